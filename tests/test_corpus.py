"""rnnrepl/text (files, decoding, tokens): reading inputs strictly and encoding them blockwise.
Every bad file is made here."""

from __future__ import annotations

import codecs
import io
import os
import random
import sys
import time
import tracemalloc
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnrepl.errors import InputDataError, UsageError
from rnnrepl.text.files import expand_inputs, load_corpus, read_text
from rnnrepl.text.tokenizers import CharVocab, WordVocab
from rnnrepl.text.tokens import (
    count_symbols,
    encode_corpus,
    split_train_val,
    token_dtype,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def write(path, data: bytes | str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


# --- decoding -----------------------------------------------------------------------------------


def test_utf8_bom_is_stripped(tmp_path):
    f = write(tmp_path / "bom.txt", codecs.BOM_UTF8 + "héllo\n".encode())
    text, report = read_text(f)
    assert text == "héllo\n"
    assert report.encodings == {f: "utf-8-sig"}
    assert report.bytes == 10 and report.chars == 6 and report.files == [f]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_wide_encodings_with_bom_are_decoded(tmp_path, codec):
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(
        codec, codecs.BOM_UTF32_LE if codec == "utf-32-le" else codecs.BOM_UTF32_BE
    )
    f = write(tmp_path / "wide.txt", bom + "naïve 中文\r\nok\n".encode(codec))
    text, report = read_text(f)
    assert text == "naïve 中文\nok\n"
    assert report.encodings[f] == codec and report.crlf_normalised == 1


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_refused_not_garbage(tmp_path, codec):
    f = write(tmp_path / "nobom.txt", "plain ascii text\n".encode(codec))
    with pytest.raises(InputDataError, match="binary") as err:
        read_text(f)
    assert f"--encoding {codec}" in err.value.hint
    text, _ = read_text(f, encoding=codec)
    assert text == "plain ascii text\n"


def test_utf16_without_bom_non_ascii_is_a_decode_error(tmp_path):
    f = write(tmp_path / "cjk.txt", "中文中文".encode("utf-16-le"))
    with pytest.raises(InputDataError, match="cannot decode as UTF-8"):
        read_text(f)


def test_latin1_byte_reports_path_offset_and_bytes(tmp_path):
    f = write(tmp_path / "latin.txt", b"hello\nwor\xe9ld\n")
    with pytest.raises(InputDataError) as err:
        read_text(f)
    e = err.value
    assert e.message == "cannot decode as UTF-8"
    assert e.path == f"{f}:9"
    assert "b'\\xe9'" in e.hint and "byte offset 9" in e.hint and "line 2" in e.hint
    assert "--encoding latin-1" in e.hint
    assert f"{f}:9" in str(e)
    text, report = read_text(f, encoding="latin-1")
    assert text == "hello\nworéld\n" and report.encodings[f] == "latin-1"


def test_cp1252_range_byte_suggests_cp1252(tmp_path):
    f = write(tmp_path / "win.txt", b"it\x92s\n")
    with pytest.raises(InputDataError, match="UTF-8") as err:
        read_text(f)
    assert "--encoding cp1252" in err.value.hint and err.value.path.endswith(":2")


def test_explicit_encoding_is_strict(tmp_path):
    f = write(tmp_path / "x.txt", b"ok \xff\xfe\xfa\n")
    with pytest.raises(InputDataError, match="cannot decode as ascii") as err:
        read_text(f, encoding="ascii")
    assert err.value.path == f"{f}:3"


@pytest.mark.parametrize("name", ["no-such-codec", "hex", "rot13", ""])
def test_unknown_or_non_text_encoding_is_a_usage_error(tmp_path, name):
    f = write(tmp_path / "x.txt", "abc\n")
    with pytest.raises(UsageError, match="unknown encoding"):
        read_text(f, encoding=name)
    with pytest.raises(UsageError):
        load_corpus([f], encoding=name)


def test_crlf_and_lone_cr_are_normalised_and_counted(tmp_path):
    f = write(tmp_path / "dos.txt", b"a\r\nb\rc\r\n\r\n\rd")
    text, report = read_text(f)
    assert text == "a\nb\nc\n\n\nd"
    assert report.crlf_normalised == 5 and report.chars == len(text)


def test_nul_bytes_are_refused(tmp_path):
    f = write(tmp_path / "img.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    with pytest.raises(InputDataError, match="looks like a binary file") as err:
        read_text(f)
    assert err.value.path == f and "offset" in err.value.hint


def test_random_bytes_are_refused(tmp_path):
    f = write(tmp_path / "rand.txt", random.Random(0).randbytes(4096))
    with pytest.raises(InputDataError, match="binary"):
        read_text(f)


def test_many_control_bytes_without_nul_are_refused(tmp_path):
    f = write(tmp_path / "ctl.txt", b"\x01\x02\x03ab" * 200)
    with pytest.raises(InputDataError, match="binary") as err:
        read_text(f)
    assert "control" in err.value.hint
    # Tabs, form feeds and ANSI colours are text.
    ok = write(tmp_path / "ok.txt", b"\x1b[1mbold\x1b[0m\tx\x0cy\n" * 50)
    assert read_text(ok)[0].startswith("\x1b[1mbold")


def test_binary_after_a_utf16_bom_is_refused(tmp_path):
    f = write(tmp_path / "b.txt", codecs.BOM_UTF16_LE + bytes(40))
    with pytest.raises(InputDataError, match="binary"):
        read_text(f)


BOMS = [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE]


@FAST
@given(st.builds(bytes.__add__, st.sampled_from(BOMS), st.binary(max_size=300)))
def test_read_text_returns_text_or_input_error(tmp_path_factory, data):
    f = tmp_path_factory.mktemp("h") / "x.bin"
    f.write_bytes(data)
    try:
        text, report = read_text(str(f))
    except InputDataError:
        return
    assert isinstance(text, str) and "\r" not in text and report.bytes == len(data)
    assert "\ufffd" not in text or "\ufffd".encode() in data  # never replaced silently


# --- reading: files, stdin ----------------------------------------------------------------------


def test_stdin_dash_reads_the_given_binary_stream():
    text, report = read_text("-", stdin=io.BytesIO(b"from\r\na pipe"))
    assert text == "from\na pipe" and report.files == ["-"] and report.crlf_normalised == 1
    wrapped = io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbfwrapped"))
    assert read_text("-", stdin=wrapped)[0] == "wrapped"
    with pytest.raises(InputDataError, match="UTF-8") as err:
        read_text("-", stdin=io.BytesIO(b"ab\xe9"))
    assert err.value.path == "<stdin>:2"


def test_missing_file_names_it(tmp_path):
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(InputDataError, match="no such file") as err:
        read_text(missing)
    assert err.value.path == missing
    with pytest.raises(InputDataError, match="no such file or directory") as err:
        expand_inputs([missing])
    assert err.value.path == missing and missing in str(err.value)


def test_directory_and_fifo_are_not_read_as_files(tmp_path):
    with pytest.raises(InputDataError, match="directory"):
        read_text(str(tmp_path))
    if not hasattr(os, "mkfifo"):
        return
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(InputDataError, match="not a regular file") as err:
        read_text(str(fifo))
    assert time.monotonic() - t0 < 2 and "'-'" in err.value.hint


# --- which files --------------------------------------------------------------------------------


def test_directory_recursion_is_sorted_and_skips_hidden_and_binary(tmp_path):
    root = tmp_path / "data"
    for rel in ["b.txt", "a.txt", "sub/c.md", "z/d", "sub/deeper/e.txt"]:
        write(root / rel, rel)
    for rel in [".hidden.txt", ".git/config", "sub/.cache/x.txt", "img.PNG", "w.safetensors"]:
        write(root / rel, "skipped")
    got = [os.path.relpath(p, root) for p in expand_inputs([str(root)])]
    assert got == ["a.txt", "b.txt", "sub/c.md", "sub/deeper/e.txt", "z/d"]
    # Named explicitly, hidden and binary-extension files are read (and sniffed by content).
    assert expand_inputs([str(root / ".hidden.txt")]) == [str(root / ".hidden.txt")]
    assert read_text(str(root / "img.PNG"))[0] == "skipped"


def test_directory_with_nothing_usable_is_an_error(tmp_path):
    write(tmp_path / "d" / ".hidden", "x")
    write(tmp_path / "d" / "a.gz", "x")
    with pytest.raises(InputDataError, match="no input files") as err:
        expand_inputs([str(tmp_path / "d")])
    assert "hidden" in err.value.hint


def test_glob_and_duplicates(tmp_path):
    for rel in ["b.txt", "a.txt", "c.md", "sub/d.txt"]:
        write(tmp_path / rel, rel)
    assert expand_inputs([str(tmp_path / "*.txt")]) == [
        str(tmp_path / "a.txt"),
        str(tmp_path / "b.txt"),
    ]
    deep = expand_inputs([str(tmp_path / "**" / "*.txt")])
    assert [os.path.relpath(p, tmp_path) for p in deep] == ["a.txt", "b.txt", "sub/d.txt"]
    again = expand_inputs([str(tmp_path / "b.txt"), str(tmp_path / "*.txt"), "-", "-"])
    assert again == [str(tmp_path / "b.txt"), str(tmp_path / "a.txt"), "-"]
    with pytest.raises(InputDataError, match="no files match") as err:
        expand_inputs([str(tmp_path / "*.nothing")])
    assert err.value.path == str(tmp_path / "*.nothing")


# --- the corpus ---------------------------------------------------------------------------------


def test_load_corpus_puts_a_newline_between_files(tmp_path):
    a = write(tmp_path / "a.txt", "first")
    b = write(tmp_path / "b.txt", b"second\r\n")
    e = write(tmp_path / "e.txt", "")
    text, report = load_corpus([a, e, b, "-"], stdin=io.BytesIO(b"third"))
    assert text == "first\nsecond\nthird"
    assert report.files == [a, e, b, "-"] and report.chars == len(text)
    assert report.bytes == 5 + 8 + 5 and report.crlf_normalised == 1
    assert set(report.encodings.values()) == {"utf-8"}


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"", r"corpus is empty: 0 characters in 1 file"),
        (b"  \r\n\t \n", r"only whitespace: 6 characters, 0 visible"),
        (b"aaa a\naa", r"only 1 distinct visible symbol \('a', 6 times\)"),
    ],
)
def test_unusable_corpus_messages(tmp_path, content, pattern):
    f = write(tmp_path / "c.txt", content)
    with pytest.raises(InputDataError, match=pattern) as err:
        load_corpus([f])
    assert err.value.path == f and "need at least 2" in err.value.hint


def test_two_symbols_are_enough(tmp_path):
    f = write(tmp_path / "c.txt", "ab")
    assert load_corpus([f])[0] == "ab"  # a single file is taken exactly as it is


# --- tokens -------------------------------------------------------------------------------------

TEXTS = st.one_of(
    st.text(alphabet=st.sampled_from(list("aAbΣσς'. ,(\n\t-İ<>unk")), max_size=80),
    st.text(max_size=40),
)


@FAST
@given(TEXTS, st.integers(1, 9), st.booleans())
def test_char_encoding_blockwise_equals_whole(text, block, lowercase):
    vocab = CharVocab.build(Counter(text[: len(text) // 2]), lowercase=lowercase)
    got = encode_corpus(text, vocab, block_chars=block)
    assert got.dtype == np.uint16
    assert got.tolist() == vocab.encode(text)
    assert count_symbols(text, "char", lowercase, block_chars=block) == count_symbols(
        text, "char", lowercase
    )


@FAST
@given(TEXTS, st.integers(1, 9), st.booleans())
def test_word_encoding_blockwise_equals_whole(text, block, lowercase):
    whole = count_symbols(text, "word", lowercase, block_chars=1 << 20)
    assert count_symbols(text, "word", lowercase, block_chars=block) == whole
    vocab = WordVocab.build(whole, lowercase=lowercase, min_freq=2)
    got = encode_corpus(text, vocab, block_chars=block)
    assert got.tolist() == vocab.encode(text)
    assert (got == 1).sum() == text.count("\n")  # one end-of-line token per newline


def test_word_blocks_never_split_a_long_line(tmp_path):
    text = "alpha beta\n" + "x" * 50 + " gamma\n"
    vocab = WordVocab.build(count_symbols(text, "word", False), lowercase=False)
    assert encode_corpus(text, vocab, block_chars=4).tolist() == vocab.encode(text)


def test_large_vocabulary_uses_int32():
    assert token_dtype(2) == np.uint16 and token_dtype(65535) == np.uint16
    assert token_dtype(65536) == np.int32
    symbols = "".join(chr(0x4E00 + i) for i in range(20000)) + "".join(
        chr(0x20000 + i) for i in range(50000)
    )
    vocab = CharVocab.build(Counter(symbols))
    ids = encode_corpus(symbols[::-1], vocab, block_chars=1000)
    assert ids.dtype == np.int32 and ids.tolist() == vocab.encode(symbols[::-1])


def test_encode_empty_text():
    vocab = CharVocab.build(Counter("ab"))
    assert encode_corpus("", vocab).shape == (0,)
    with pytest.raises(UsageError):
        encode_corpus("ab", vocab, block_chars=0)


def test_split_train_val_by_position_as_views():
    ids = np.arange(100, dtype=np.uint16)
    train, val = split_train_val(ids, 0.1)
    assert train.tolist() == list(range(90)) and val.tolist() == list(range(90, 100))
    assert np.shares_memory(train, ids) and np.shares_memory(val, ids)
    assert [len(p) for p in split_train_val(ids[:5], 0.1)] == [4, 1]  # nanoGPT's int(n * 0.9)
    with pytest.raises(UsageError):
        split_train_val(ids, 1.0)


def test_twenty_megabytes_encode_in_bounded_memory():
    line = "The quick brown fox jumps over the lazy dog; 0123456789!\n"
    text = line * (20_000_000 // len(line))
    vocab = CharVocab.build(Counter(line))
    tracemalloc.start()
    try:
        ids = encode_corpus(text, vocab)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ids.dtype == np.uint16 and len(ids) == len(text)
    assert ids[: len(line)].tolist() == vocab.encode(line) == ids[-len(line) :].tolist()
    assert peak < 5 * ids.nbytes + sys.getsizeof(text), (peak, ids.nbytes)
