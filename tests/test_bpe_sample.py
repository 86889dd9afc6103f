"""Issue 16: a BPE vocabulary is learnt in bounded memory, from the whole corpus up to
SAMPLE_CHARS characters and from an evenly spread, deterministic sample of a larger one."""

from __future__ import annotations

import json
import re

from rnnrepl.store.container import read_metadata
from rnnrepl.store.home import tokens_home
from rnnrepl.text.bpe_sample import SAMPLE_CHARS, BpeSample
from rnnrepl.text.corpus_ids import CorpusOptions, make_tokenizer
from rnnrepl.text.corpus_scan import scan_corpus
from tests.test_token_cache import train


def write_files(tmp_path, lines: list[int]) -> list[str]:
    """Files of the given numbers of lines; line j of file k holds the marker fKlJ."""
    paths = []
    for k, n in enumerate(lines):
        path = tmp_path / f"{k}.txt"
        path.write_text("".join(f"f{k}l{j} the cat sat on the mat\n" for j in range(n)))
        paths.append(str(path))
    return paths


def sample_of(paths: list[str], budget: int, window: int) -> tuple[list[str], BpeSample]:
    sample = BpeSample(scan_corpus(paths, [], None, False), False, budget, window)
    return list(sample.texts()), sample


def test_a_large_corpus_is_sampled_evenly_from_every_file_and_always_alike(tmp_path):
    paths = write_files(tmp_path, [40_000, 4_000, 400])  # 1.3 MB, 130 kB, 13 kB
    total = scan_corpus(paths, [], None, False).report.chars
    budget = total // 10
    texts, sample = sample_of(paths, budget, 4096)
    assert texts == sample_of(paths, budget, 4096)[0]  # deterministic
    assert 0.95 * budget <= sample.chars <= budget and sample.chars == sum(map(len, texts))
    assert sample.to_dict() == {"chars": sample.chars, "of": total, "windows": len(texts)}
    for k, n in enumerate([40_000, 4_000, 400]):
        lines = [int(j) for t in texts for j in re.findall(rf"\bf{k}l(\d+)\b", t)]
        assert lines, f"file {k} gave nothing"
        share = len(lines) / n
        assert 0.08 < share < 0.11  # its share of the budget, by its size
        if n >= 4_000:  # several windows: text from every quarter of the file
            assert {4 * j // n for j in lines} == {0, 1, 2, 3}
    # each window is cut out at safe cuts, before a space or newline: no word is torn
    whole = "".join(open(p).read() for p in paths)
    for t in texts:
        at = whole.find(t)
        assert at >= 0 and t[0] in " \n" and whole[at + len(t)] in " \n"


def test_a_corpus_under_the_cap_is_learnt_from_whole(tmp_path):
    paths = write_files(tmp_path, [3_000, 1_000])
    texts, sample = sample_of(paths, SAMPLE_CHARS, 1 << 20)
    whole = "".join(open(p).read() for p in paths)
    assert "".join(texts) == whole and sample.windows == 0


def test_train_records_how_much_text_the_vocabulary_came_from(tmp_path):
    paths = write_files(tmp_path, [3_000, 1_000])
    err = train(*paths, out=tmp_path / "m", extra=["--level", "bpe", "--vocab-size", "300"])
    assert "note: the BPE vocabulary was learnt from a sample" not in err  # whole: no note
    [entry] = [p for p in tokens_home().iterdir() if p.is_dir()]
    meta = json.loads((entry / "meta.json").read_text())
    whole = "".join(open(p).read() for p in paths)
    assert meta["bpe_sample"] == {"chars": len(whole), "of": len(whole), "windows": 0}
    # the vocabulary is the one learnt from the text whole, as before sampling existed
    tok = json.loads((entry / "tokenizer.json").read_text())
    opts = CorpusOptions(tuple(paths), "bpe", vocab_size=300)
    assert tok == make_tokenizer(whole, opts).to_dict()
    training = json.loads(read_metadata(tmp_path / "m.safetensors", "model")["training"])
    assert training["bpe_sample"] == meta["bpe_sample"]  # the model file records it too
