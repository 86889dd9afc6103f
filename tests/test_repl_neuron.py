"""/neuron L:I in the REPL: the document coloured by one hidden unit's activation as it is
typed, each shade checked against the unit's value in the model's own forward pass."""

from __future__ import annotations

import re

import pytest
import torch

from rnnrepl.config import SampleConfig
from rnnrepl.infer.predictor import Predictor
from rnnrepl.infer.unit_track import UNIT_BASE, level
from rnnrepl.repl.state import Settings
from rnnrepl.ui.surprisal import SHADES
from tests.repl_support import char_vocab, random_lstm, running_repl, wait_for

torch.set_num_threads(1)

CHAR = random_lstm(char_vocab("the cat sat on mat.\n"), seed=4)
GREEDY = Settings(SampleConfig(temperature=0.0, max_tokens=8))


def unit_values(loaded, text: str, layer: int, unit: int) -> list[float]:
    """The unit after each character of `text`, fed after the start token in one forward pass
    of a stand-alone copy of layers 1..layer (nn.LSTM gives only its top layer's outputs)."""
    model, tok = loaded.model, loaded.tokenizer
    rnn = model.rnn
    part = torch.nn.LSTM(rnn.input_size, rnn.hidden_size, num_layers=layer, batch_first=True)
    part.load_state_dict({k: v for k, v in rnn.state_dict().items() if int(k[-1]) < layer})
    ids = torch.tensor([[tok.index["\n"], *tok.encode(text)]])
    with torch.no_grad():
        h, _ = part(model.embed(ids))
    return h[0, 1:, unit].tolist()


def test_the_track_follows_typing_and_edits_at_one_step_a_key():
    predictor = Predictor(CHAR)
    text = ""
    for ch in "the cat sat":
        text += ch
        marks = predictor.colors(text, "unit 2:5")
    assert [m.prob for m in marks] == pytest.approx(unit_values(CHAR, text, 2, 5), abs=1e-5)
    assert [m.bucket - UNIT_BASE for m in marks] == [level(m.prob) for m in marks]
    assert predictor.colors_pending("the cat sat on") == 3
    edited = predictor.colors("the mat", "unit 1:3")  # another unit: afresh
    assert [m.prob for m in edited] == pytest.approx(unit_values(CHAR, "the mat", 1, 3), abs=1e-5)
    assert predictor.colors("the mat", "rank") and predictor.units.unit is None


def test_levels_span_the_shades():
    assert [level(v) for v in (-1.0, -0.5, 0.0, 0.5, 1.0)] == [0, 1, 3, 5, 6]
    assert level(1.0) == len(SHADES) - 1


def shaded(repl) -> dict[int, int]:
    """Index in the input line -> shade level, from the input control's style classes."""
    control = repl.repl.ui.application.layout.current_control
    content = control.create_content(width=200, height=10)
    out, pos = {}, 0
    for style, text, *_ in content.get_line(0):
        for _ in text:
            found = re.search(r"class:surprise-(\d+)", style)
            if found:
                out[pos] = int(found.group(1)) - UNIT_BASE
            pos += 1
    return out


def test_neuron_colours_the_input_line_by_the_unit():
    with running_repl(CHAR, GREEDY) as repl:
        repl.type("/neuron 2:8\r")
        wait_for(lambda: repl.session.settings.color == "unit 2:8", what="/neuron")
        assert "colouring by unit 2:8" in repl.output()
        repl.type("the cat sat")
        repl.view_for("the cat sat")
        want = {i: level(v) for i, v in enumerate(unit_values(CHAR, "the cat sat", 2, 8))}
        wait_for(lambda: shaded(repl) == want, what="the input line's shades")
        assert len(set(want.values())) > 1
        assert "unit 2:8 -1" in repl.status()
        repl.type("\x03/neuron off\r")
        wait_for(lambda: repl.session.settings.color == "off", what="/neuron off")


def test_a_unit_the_model_lacks_or_a_bad_argument_changes_nothing():
    with running_repl(CHAR, GREEDY) as repl:
        repl.type("/neuron 3:0\r")
        wait_for(lambda: "no unit 3:0: layers 1-2, units 0-15" in repl.output())
        repl.type("/neuron 1:x\r")
        wait_for(lambda: "usage: /neuron LAYER:UNIT" in repl.output())
        assert repl.session.settings.color == "off"
