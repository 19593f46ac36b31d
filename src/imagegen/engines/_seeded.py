"""numpy's seeded random numbers, without numpy: `Draws(seed)` gives the numbers that
`numpy.random.default_rng(seed)` gives, bit for bit.

The placeholder engine draws its colours, angles and glows from `default_rng`. Importing numpy
takes longer than drawing a whole placeholder image, so the drawing of generations, which needs
a dozen numbers, gets them from this module instead: numpy's `SeedSequence` (the hash that
turns a seed into a state) and its PCG64 generator (XSL-RR output) in plain Python, so a seed
keeps the picture it always had. Edits and variations, which draw whole arrays, use numpy.
"""

from __future__ import annotations

__all__ = ["Draws"]

_M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1
_M128 = (1 << 128) - 1

# numpy.random.SeedSequence: a pool of 4 words mixed from the entropy, then the state words.
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_POOL = 4

_PCG_MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645  # PCG's 128-bit LCG multiplier


def _pool(entropy: int) -> list[int]:
    """`SeedSequence(entropy).pool`."""
    words = []
    while True:  # the integer as 32-bit words, least significant first
        words.append(entropy & _M32)
        entropy >>= 32
        if not entropy:
            break
    hash_const = _INIT_A

    def hashmix(value: int) -> int:
        nonlocal hash_const
        value ^= hash_const
        hash_const = (hash_const * _MULT_A) & _M32
        value = (value * hash_const) & _M32
        return value ^ (value >> 16)

    def mix(x: int, y: int) -> int:
        result = (_MIX_L * x - _MIX_R * y) & _M32
        return result ^ (result >> 16)

    pool = [hashmix(words[i] if i < len(words) else 0) for i in range(_POOL)]
    for source in range(_POOL):
        for target in range(_POOL):
            if source != target:
                pool[target] = mix(pool[target], hashmix(pool[source]))
    for source in range(_POOL, len(words)):
        for target in range(_POOL):
            pool[target] = mix(pool[target], hashmix(words[source]))
    return pool


def _state_words(pool: list[int], count: int) -> list[int]:
    """`SeedSequence.generate_state(count, np.uint64)`."""
    hash_const = _INIT_B
    halves = []
    for index in range(2 * count):
        value = pool[index % _POOL] ^ hash_const
        hash_const = (hash_const * _MULT_B) & _M32
        value = (value * hash_const) & _M32
        halves.append(value ^ (value >> 16))
    return [halves[i] | (halves[i + 1] << 32) for i in range(0, 2 * count, 2)]


class Draws:
    """The stream of `numpy.random.default_rng(seed)` (a non-negative integer seed):
    `random()` and `uniform()` return what the generator's methods of that name return."""

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError("the seed must be a non-negative integer")
        words = _state_words(_pool(seed), 4)
        start, sequence = (words[0] << 64) | words[1], (words[2] << 64) | words[3]
        self._increment = ((sequence << 1) | 1) & _M128
        self._state = 0
        self._step()
        self._state = (self._state + start) & _M128
        self._step()

    def _step(self) -> None:
        self._state = (self._state * _PCG_MULTIPLIER + self._increment) & _M128

    def _next64(self) -> int:
        self._step()
        state = self._state
        value = ((state >> 64) ^ state) & _M64
        turn = state >> 122
        return ((value >> turn) | (value << (-turn & 63))) & _M64

    def random(self) -> float:
        """A float in [0, 1), 53 random bits."""
        return (self._next64() >> 11) * (1.0 / 9007199254740992.0)

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()
