#!/usr/bin/env python3
"""Drops exports from a WebAssembly module, in place: those whose name contains WORD (any case).

    scripts/prune-wasm-exports.py <module.wasm> <word>

Called by the bundles' post-build hook (scripts/site-assets.sh), which then runs wasm-opt again
so that the code only those exports reached goes too. Only the export section changes; every
other section is copied byte for byte. Prints what it dropped; fails if nothing matched.
"""

import sys

EXPORT_SECTION = 7


def read_leb(data: bytes, at: int) -> tuple[int, int]:
    """An unsigned LEB128 number at `at`, and where the next field starts."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def leb(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | 0x80 if value else low)
        if not value:
            return bytes(out)


def without_exports(body: bytes, word: str) -> tuple[bytes, list[str]]:
    """The export section's body without the exports named with `word`, and their names."""
    count, at = read_leb(body, 0)
    kept, dropped = [], []
    for _ in range(count):
        start = at
        length, at = read_leb(body, at)
        name = body[at : at + length].decode()
        at += length + 1  # the name, then the kind of thing exported
        _, at = read_leb(body, at)  # its index
        if word in name.lower():
            dropped.append(name)
        else:
            kept.append(body[start:at])
    return leb(len(kept)) + b"".join(kept), dropped


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, word = sys.argv[1], sys.argv[2].lower()
    data = open(path, "rb").read()
    if data[:4] != b"\0asm":
        sys.exit(f"{path} is not a WebAssembly module")
    out, at, dropped = bytearray(data[:8]), 8, []
    while at < len(data):
        section = data[at]
        size, start = read_leb(data, at + 1)
        body = data[start : start + size]
        at = start + size
        if section == EXPORT_SECTION:
            body, dropped = without_exports(body, word)
        out += bytes([section]) + leb(len(body)) + body
    if not dropped:
        # What the hook exists for is gone (a Leptos without wasm-streams, say): say so loudly
        # rather than run a step that does nothing.
        sys.exit(f"{path}: no export named with '{word}': drop this step from scripts/site-assets.sh")
    open(path, "wb").write(out)
    print(f"{path}: {len(dropped)} exports named with '{word}' dropped: {', '.join(dropped) or 'none'}")


if __name__ == "__main__":
    main()
