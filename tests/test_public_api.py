"""The public API: one sorted `__all__`, every name importable, and a light `import imagegen`."""

from __future__ import annotations

import inspect
import subprocess
import sys

import imagegen


def test_all_is_sorted_and_unique() -> None:
    assert imagegen.__all__ == sorted(set(imagegen.__all__))


def test_every_public_name_resolves() -> None:
    for name in imagegen.__all__:
        assert getattr(imagegen, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from imagegen import *", namespace)
    assert set(imagegen.__all__) <= set(namespace)


def test_public_names_match_the_lazy_table() -> None:
    assert set(imagegen.__all__) == set(imagegen._EXPORTS) | {"__version__"}
    assert set(imagegen.__all__) <= set(dir(imagegen))


def test_unknown_names_raise_attribute_error() -> None:
    try:
        imagegen.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_error_classes_and_models_are_exported() -> None:
    for name in ("InvalidRequestError", "RateLimitError", "ContentPolicyError", "APIError"):
        assert issubclass(getattr(imagegen, name), imagegen.ImagegenError)
    assert imagegen.ImagesResponse.__name__ == "ImagesResponse"
    assert inspect.isabstract(imagegen.Engine)


def test_client_signature_is_the_agreed_one() -> None:
    parameters = inspect.signature(imagegen.Client).parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    assert list(parameters) == [
        "api_key",
        "base_url",
        "organization",
        "project",
        "timeout",
        "max_retries",
        "max_retry_wait",
        "max_response_size",
        "max_image_size",
        "allow_private_downloads",
        "proxy",
        "default_headers",
        "default_query",
        "azure_endpoint",
        "azure_deployment",
        "api_version",
        "azure_ad_token",
        "engine",
        "engine_model",
        "engine_options",
        "http_client",
    ]
    assert list(inspect.signature(imagegen.AsyncClient).parameters) == list(parameters)
    sync = inspect.signature(imagegen.Client.generate).parameters
    assert list(inspect.signature(imagegen.AsyncClient.generate).parameters) == list(sync)
    assert list(inspect.signature(imagegen.generate).parameters) == list(sync)[1:]


def test_import_is_light() -> None:
    # The command line imports the package first; the HTTP stack, pydantic and Pillow must wait.
    code = (
        "import sys, imagegen, imagegen._errors; "
        "print(sorted(m for m in ('httpx2', 'pydantic', 'PIL') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
