"""PostgreSQL's ``hashint8extended`` in Python, so that SQLite runs the demo generator's
statements with the same random values (PostgreSQL's hash partitioning keeps it stable across
versions). It is Bob Jenkins' lookup3 hash of the 64-bit value folded to 32 bits, with a seed."""
import functools

_M32 = 0xFFFFFFFF


def _rot(x, k):
    return ((x << k) | (x >> (32 - k))) & _M32


def _mix(a, b, c):
    a = (a - c) & _M32; a ^= _rot(c, 4); c = (c + b) & _M32  # noqa: E702
    b = (b - a) & _M32; b ^= _rot(a, 6); a = (a + c) & _M32  # noqa: E702
    c = (c - b) & _M32; c ^= _rot(b, 8); b = (b + a) & _M32  # noqa: E702
    a = (a - c) & _M32; a ^= _rot(c, 16); c = (c + b) & _M32  # noqa: E702
    b = (b - a) & _M32; b ^= _rot(a, 19); a = (a + c) & _M32  # noqa: E702
    c = (c - b) & _M32; c ^= _rot(b, 4); b = (b + a) & _M32  # noqa: E702
    return a, b, c


@functools.lru_cache(maxsize=256)
def _seeded_state(seed):
    a = b = c = (0x9E3779B9 + 4 + 3923095) & _M32
    if seed:
        a = (a + (seed >> 32)) & _M32
        b = (b + (seed & _M32)) & _M32
        a, b, c = _mix(a, b, c)
    return a, b, c


def hashint8extended(value, seed):
    """The signed 64-bit hash PostgreSQL's hashint8extended(value, seed) returns."""
    value &= 0xFFFFFFFFFFFFFFFF
    low, high = value & _M32, value >> 32
    low ^= (high ^ _M32) if value >> 63 else high
    a, b, c = _seeded_state(seed & 0xFFFFFFFFFFFFFFFF)
    a = (a + low) & _M32
    # final(a, b, c), unrolled: this runs for every random value SQLite asks for.
    c ^= b; c = (c - (((b << 14) | (b >> 18)) & _M32)) & _M32  # noqa: E702
    a ^= c; a = (a - (((c << 11) | (c >> 21)) & _M32)) & _M32  # noqa: E702
    b ^= a; b = (b - (((a << 25) | (a >> 7)) & _M32)) & _M32  # noqa: E702
    c ^= b; c = (c - (((b << 16) | (b >> 16)) & _M32)) & _M32  # noqa: E702
    a ^= c; a = (a - (((c << 4) | (c >> 28)) & _M32)) & _M32  # noqa: E702
    b ^= a; b = (b - (((a << 14) | (a >> 18)) & _M32)) & _M32  # noqa: E702
    c ^= b; c = (c - (((b << 24) | (b >> 8)) & _M32)) & _M32  # noqa: E702
    result = (b << 32) | c
    return result - (1 << 64) if result >> 63 else result


def register(sqlite_connection):
    sqlite_connection.create_function("hashint8extended", 2, hashint8extended, deterministic=True)
