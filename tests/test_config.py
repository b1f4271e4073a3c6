"""The configuration as a user writes it: options from a dict or a TOML file (top-level
keys or an ``[evolve]`` table), unknown options refused with the known ones listed, every
rule of ``validate`` answered by a message that names the option and where it came from,
selection weights from the command line, a table or a list, and every such error a
``ConfigError``, which the command line shows as the user's mistake (``EvoartError``)."""

from __future__ import annotations

import dataclasses

import pytest

from evoart.config import ConfigError, EvolveConfig, load_toml, parse_weights
from evoart.errors import EvoartError


def test_a_config_error_is_the_users_mistake():
    assert issubclass(ConfigError, EvoartError) and issubclass(ConfigError, ValueError)


def test_the_defaults_are_a_valid_run():
    cfg = EvolveConfig().validate()
    assert (cfg.samples, cfg.judge_samples) == (128, 64)  # judging uses 64 images unless told
    assert EvolveConfig(samples=32).validate().judge_samples == 32  # never more than there are
    assert cfg.lam == cfg.population  # as many children as the population unless told
    assert EvolveConfig(population=4, children=6).validate().lam == 6


# ---- from a dict -------------------------------------------------------------------------


def test_from_dict_takes_every_field_and_hyphens_for_underscores():
    cfg = EvolveConfig.from_dict({"population": 4, "judge-samples": 32, "samples": 48, "crossover_rate": 0.5})
    assert (cfg.population, cfg.judge_samples, cfg.samples, cfg.crossover_rate) == (4, 32, 48, 0.5)
    # what a run records is read back as the same configuration
    assert EvolveConfig.from_dict(cfg.to_dict()) == cfg


def test_from_dict_refuses_an_unknown_option_and_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        EvolveConfig.from_dict({"population": 4, "populaton": 5}, source="my.toml")
    message = str(info.value)
    assert message.startswith("my.toml: unknown option 'populaton'")
    for f in dataclasses.fields(EvolveConfig):
        assert f.name in message.split("known:", 1)[1], f.name


def test_from_dict_validates():
    with pytest.raises(ConfigError, match="^options: population must be at least 2"):
        EvolveConfig.from_dict({"population": 1}, source="options")


# ---- every rule names its option ---------------------------------------------------------

BAD = [
    # (what the user set, the option the message must name, more text it must contain)
    ({"population": "8"}, "population", "integer"),
    ({"population": True}, "population", "integer"),
    ({"generations": 2.5}, "generations", "integer"),
    ({"steps": None}, "steps", "integer"),
    ({"resolution": 32.0}, "resolution", "integer"),
    ({"samples": "many"}, "samples", "integer"),
    ({"judge_samples": 8.0}, "judge_samples", "integer"),
    ({"holdout": [256]}, "holdout", "integer"),
    ({"workers": 1.5}, "workers", "integer"),
    ({"seed": "0"}, "seed", "integer"),
    ({"population": 1}, "population", "at least 2"),
    ({"children": 0}, "children", "positive integer"),
    ({"children": 2.5}, "children", "positive integer"),
    ({"generations": 0}, "generations", "at least 1"),
    ({"steps": 0}, "steps", "at least 1"),
    ({"resolution": 24}, "resolution", "16, 32, 64 or 128"),
    ({"resolution": 256}, "resolution", "16, 32, 64 or 128"),
    ({"samples": 8}, "samples", "at least 16"),
    ({"judge_samples": 1}, "judge_samples", "between 2 and samples"),
    ({"samples": 32, "judge_samples": 33}, "judge_samples", "between 2 and samples"),
    ({"holdout": 16}, "holdout", "at least judge_samples"),
    ({"eval_holdout": 16}, "eval_holdout", "0 (no evaluation split"),
    ({"eval_holdout": -1}, "eval_holdout", "at least 32"),
    ({"eval_holdout": 256.0}, "eval_holdout", "integer"),
    ({"workers": 0}, "workers", "at least 1"),
    ({"device": "tpu"}, "device", "'tpu'"),
    ({"inherit": "yes"}, "inherit", "true or false"),
    ({"mutation_strength": 0}, "mutation_strength", "(0, 5]"),
    ({"mutation_strength": 6}, "mutation_strength", "(0, 5]"),
    ({"mutation_strength": float("nan")}, "mutation_strength", "(0, 5]"),
    ({"crossover_rate": 1.5}, "crossover_rate", "[0, 1]"),
    ({"crossover_rate": "half"}, "crossover_rate", "[0, 1]"),
    ({"budget_seconds": 0}, "budget_seconds", "positive"),
    ({"budget_seconds": "60"}, "budget_seconds", "positive"),
    ({"from_presets": "lsgan"}, "from_presets", "list"),
    ({"selection": "lexicase"}, "selection", "nsga2, weighted"),
    ({"weights": "realism=1"}, "weights", "--selection weighted"),
    ({"selection": "weighted", "weights": "swd=1"}, "weights", "unknown objective 'swd'"),
    ({"features": ""}, "features", ".pt"),
    ({"features": "/no/such/extractor.pt"}, "features", "does not exist"),
]


@pytest.mark.parametrize("given, option, text", BAD, ids=[f"{o}={g[o]!r}" for g, o, _ in BAD])
def test_every_rule_names_the_option(given, option, text):
    with pytest.raises(ConfigError) as info:
        EvolveConfig.from_dict(given, source="run.toml")
    message = str(info.value)
    assert message.startswith("run.toml: "), message
    assert option in message and text in message, message


@pytest.mark.parametrize("given", [
    {"device": "cuda:1"}, {"device": "cpu"}, {"children": 1}, {"crossover_rate": 0}, {"crossover_rate": 1},
    {"mutation_strength": 5}, {"budget_seconds": 0.5}, {"resolution": 128}, {"samples": 16, "holdout": 16},
    {"population": 2, "generations": 1, "steps": 1, "workers": 1},
])
def test_the_edges_of_every_range_are_allowed(given):
    cfg = EvolveConfig.from_dict(given)
    assert all(getattr(cfg, k) == v for k, v in given.items())


def test_features_is_resolved_to_an_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "extractor.pt").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert EvolveConfig.from_dict({"features": "extractor.pt"}).features == str((tmp_path / "extractor.pt").resolve())


# ---- TOML files --------------------------------------------------------------------------


def test_a_toml_file_with_top_level_keys(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('population = 4\ngenerations = 3\ndata = "faces"\nfrom-presets = ["lsgan"]\n')
    cfg = EvolveConfig.from_dict(load_toml(path), source=str(path))
    assert (cfg.population, cfg.generations, cfg.data, cfg.from_presets) == (4, 3, "faces", ["lsgan"])


def test_a_toml_file_with_an_evolve_table(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('seed = 3\n[evolve]\npopulation = 4\nselection = "weighted"\n'
                    '[evolve.weights]\nrealism = 2\ncoverage = 1\n')
    cfg = EvolveConfig.from_dict(load_toml(path))
    assert (cfg.seed, cfg.population, cfg.selection) == (3, 4, "weighted")
    assert cfg.weights == {"realism": 2.0, "perceptual": 0.0, "coverage": 1.0}
    # the table has the last word over a top-level key of the same name
    path.write_text("population = 3\n[evolve]\npopulation = 5\n")
    assert EvolveConfig.from_dict(load_toml(path)).population == 5


def test_a_missing_or_broken_toml_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "nothing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("population = \n")
    with pytest.raises(ConfigError, match="broken.toml is not valid TOML"):
        load_toml(broken)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[evolve]\npopulatoin = 4\n")
    with pytest.raises(ConfigError, match="unknown option 'populatoin'"):
        EvolveConfig.from_dict(load_toml(unknown), source=str(unknown))


# ---- selection weights -------------------------------------------------------------------


def test_weights_parse_from_the_command_line_a_table_or_a_list():
    """Moved from test_ga."""
    assert parse_weights("realism=2, coverage=0.5") == {"realism": 2.0, "perceptual": 0.0, "coverage": 0.5}
    assert parse_weights({"perceptual": 1}) == {"realism": 0.0, "perceptual": 1.0, "coverage": 0.0}
    assert parse_weights([1, 2, 3]) == {"realism": 1.0, "perceptual": 2.0, "coverage": 3.0}
    assert parse_weights(None) is None  # equal weights, decided by selection
    for bad, msg in (("swd=1", "unknown objective"), ("realism", "look like"), ("realism=-1", ">= 0"),
                     ("realism=lots", "not a number"), ("realism=0", "above 0"), ([1, 2], "3 numbers"),
                     ({"realism": True}, ">= 0"), ({"realism": float("nan")}, ">= 0"),
                     ({"realism": float("inf")}, ">= 0"), (7, "table")):
        with pytest.raises(ConfigError, match=msg):
            parse_weights(bad)
    with pytest.raises(ConfigError, match="^weights.toml: "):
        parse_weights("swd=1", source="weights.toml")


def test_weights_are_for_weighted_selection():
    cfg = EvolveConfig(selection="weighted", weights="realism=1").validate()
    assert cfg.weights == {"realism": 1.0, "perceptual": 0.0, "coverage": 0.0}
    with pytest.raises(ConfigError, match="--selection weighted"):
        EvolveConfig(weights="realism=1").validate()
    assert EvolveConfig(selection="weighted").validate().weights is None  # all equal


@pytest.mark.parametrize("option", ["children", "mutation_strength", "crossover_rate", "budget_seconds"])
def test_true_is_not_a_number(option):
    """`children = true` in a TOML file must not quietly mean one child per generation."""
    with pytest.raises(ConfigError, match=option):
        EvolveConfig.from_dict({option: True})
