#!/usr/bin/env python3
"""Group `perf report --no-children --sort symbol --stdio -g none` lines (stdin) by
the crate a symbol's name shows; prints self time per group."""
import collections
import re
import sys

GROUPS = [
    ("quic/tls", r"quinn|rustls|ring::aead|ring_core|aes|gcm|chacha"),
    ("turmoil", r"turmoil"),
    ("tokio", r"tokio"),
    ("malloc/mem", r"malloc|free|memmove|memcpy|memset|memcmp|unlink_chunk|realloc|_int_"),
    ("blake3", r"blake3"),
    ("ed25519/curve", r"curve25519|ed25519|sha2|Sha512|sha512"),
    ("bls", r"bls12|pairing"),
    ("consensus", r"consensus::"),
    ("mempool", r"mempool::"),
    ("network", r"network::"),
    ("bincode/serde", r"bincode|serde"),
    ("indexmap/hash", r"indexmap|hashbrown|Hash|hash"),
]
total = collections.Counter()
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+\[.\]\s+(.*)", line)
    if not m:
        continue
    share, symbol = float(m.group(1)), m.group(2).strip()
    key = next((k for k, pattern in GROUPS if re.search(pattern, symbol)), "other")
    total[key] += share
for key, share in total.most_common():
    print(f"{share:6.1f}% {key}")
