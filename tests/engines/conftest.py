"""The tiny diffusers models, built once per session for every diffusers test that needs one."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def model_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import tiny_models

    root = tmp_path_factory.mktemp("diffusers-models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        return {
            "sd": tiny_models.build_text2img(root / "tiny-sd"),
            "variation": tiny_models.build_variation(root / "tiny-variation"),
        }
