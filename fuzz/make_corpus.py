#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/<target>/: small, readable seeds.

Run from the repository root: python3 fuzz/make_corpus.py. The outputs are
committed; this script documents how each seed was made.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
V1_MAGIC = 0x616B3432


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def tensor_floats(dim, hidden, layers, heads, kv_heads, vocab, shared):
    kv_dim = kv_heads * (dim // heads)
    per_layer = 2 * dim + 2 * dim * dim + 2 * dim * kv_dim + 3 * dim * hidden
    return vocab * dim + layers * per_layer + dim + (0 if shared else vocab * dim)


def floats(n):
    return struct.pack("<%df" % n, *[((i * 37) % 17 - 8) / 8.0 for i in range(n)])


def legacy(dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared=True):
    header = struct.pack("<7i", dim, hidden, layers, heads, kv_heads,
                         vocab if shared else -vocab, seq_len)
    n = tensor_floats(dim, hidden, layers, heads, kv_heads, vocab, shared)
    return header + floats(n + seq_len * (dim // heads))


def v1_after_magic(dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared=True):
    # fuzz_checkpoint_v1 puts the magic in front itself.
    header = struct.pack("<i7iB", 1, dim, hidden, layers, heads, kv_heads, vocab, seq_len,
                         1 if shared else 0).ljust(252, b"\0")
    return header + floats(tensor_floats(dim, hidden, layers, heads, kv_heads, vocab, shared))


def tokenizer_file(pieces, score=0.0):
    out = struct.pack("<i", max(len(p) for p in pieces))
    for i, p in enumerate(pieces):
        out += struct.pack("<fi", score - i * 0.5, len(p)) + p
    return out


def main():
    # Checkpoints: the smallest valid shapes (dim 2, one head), both classifier modes, GQA.
    write("fuzz_checkpoint_legacy", "tiny_shared", legacy(2, 1, 1, 1, 1, 3, 1))
    write("fuzz_checkpoint_legacy", "tiny_separate", legacy(2, 1, 1, 1, 1, 3, 2, False))
    write("fuzz_checkpoint_legacy", "gqa", legacy(8, 4, 2, 4, 2, 4, 2))
    write("fuzz_checkpoint_legacy", "header_only", struct.pack("<7i", 2, 1, 1, 1, 1, 3, 1))
    write("fuzz_checkpoint_v1", "tiny_shared", v1_after_magic(2, 1, 1, 1, 1, 3, 1))
    write("fuzz_checkpoint_v1", "tiny_separate", v1_after_magic(2, 1, 1, 1, 1, 3, 2, False))
    write("fuzz_checkpoint_v1", "gqa", v1_after_magic(8, 4, 2, 4, 2, 4, 2))
    write("fuzz_checkpoint_v1", "limits",
          struct.pack("<i7iB", 1, 65536, 1 << 20, 4096, 4096, 4096, 1 << 22, 1 << 22, 1).ljust(252, b"\0"))

    # Tokenizers: 2 bytes of vocab_size, then the file. llama2.c's layout (3 specials,
    # 256 byte pieces) plus a few merges, and a bare 3-token vocabulary.
    specials = [b"<unk>", b"\n<s>\n", b"\n</s>\n"]
    byte_pieces = [b"<0x%02X>" % b for b in range(256)]
    words = [b" ", b"a", b"b", b"c", b"ab", b"bc", b"abc", b" a", b"O", b"n", b"On"]
    llama = specials + byte_pieces + words
    write("fuzz_tokenizer_load", "llama_layout",
          struct.pack("<H", len(llama)) + tokenizer_file(llama))
    write("fuzz_tokenizer_load", "three", struct.pack("<H", 3) + tokenizer_file(specials))

    # Encode: first byte picks the vocabulary (even: tok512, odd: 32K).
    texts = ["Once upon a time, there was a little girl named Lily.",
             "na\u00efve caf\u00e9 \u201cquoted\u201d \U0001F600",
             "  spaces\tand\nnewlines  ", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]
    for i, text in enumerate(texts):
        for vocab in (0, 1):
            write("fuzz_encode", "text%d_%d.txt" % (i, vocab), bytes([vocab]) + text.encode())
    write("fuzz_encode", "stray_bytes.txt", b"\x01\x80\xff\xc3 \xe2\x80")

    write("fuzz_prompts_file", "three.txt", "Once upon a time\n\nThe little dog\r\nMax the cat")
    write("fuzz_prompts_file", "empty_lines.txt", "\n\n\r\n")
    write("fuzz_request_lengths", "lengths.txt", "# chat traffic\n100, 2000\t512\n7 # tail\n")
    write("fuzz_request_lengths", "big.txt", "2147483647 2147483648 0 -5 12x")


if __name__ == "__main__":
    main()
