"""`litelong eval` and `litelong export`: the tasks hide what they ask for, the scorer credits a
model that finds it and no other, and an exported TrainingJob is the model it trained."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from litelong.api import parse  # noqa: E402
from litelong.api.v1alpha1 import TrainingJob  # noqa: E402
from litelong.api.v1alpha1.trainingjob import Evaluation  # noqa: E402
from litelong.eval import runner, subject, tasks, text  # noqa: E402
from litelong.eval.decontamination import TrainingNgrams  # noqa: E402
from litelong.eval.perplexity import buckets  # noqa: E402
from litelong.eval.scorer import wilson  # noqa: E402
from litelong.store import ArtifactStore  # noqa: E402

from .conftest import Cli  # noqa: E402


class InductionOracle:
    """A model that reads its context: at each position it finds the longest earlier
    occurrence of the tokens just before it and predicts the token that followed there
    (what an induction head does). It retrieves a needle exactly when the needle is in the
    context and the question repeats the needle's wording."""

    def next_token_stats(self, ids: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
        tokens = [int(i) for i in ids]
        predicted = np.asarray([self._predict(tokens[:j]) for j in range(start, len(tokens))])
        nll = np.where(predicted == np.asarray(tokens[start:]), 0.0, 20.0)
        return predicted, nll

    @staticmethod
    def _predict(context: list[int]) -> int:
        for k in range(min(24, len(context) - 1), 0, -1):
            suffix = context[-k:]
            for p in range(len(context) - k - 1, -1, -1):
                if context[p : p + k] == suffix:
                    return context[p + k]
        return -1


class ReadingOracle:
    """A model that does what each task asks by reading the prompt's text (regular
    expressions over the needles, the assignment chain, word counts) and gives its answers in
    the REVERSE of context order: it scores 1.0 only if the scorer is order-free, and nothing
    when what it must read is taken out of the context."""

    NEEDLE = re.compile(r"The special magic number for ([a-z-]+) is: (\d+)\.")

    def __init__(self, words: text.EvalTokenizer) -> None:
        self.words = words
        self.comma = int(words.encode(",")[0])

    def solve(self, prompt: str) -> list[str]:
        context, query = prompt.rsplit("\n\n", 1)
        if query.startswith("Find all variables"):
            value = re.search(r"the value (\d+)", query).group(1)  # type: ignore[union-attr]
            holds = {value}
            for name, source in re.findall(r"VAR (\w+) = (?:VAR )?(\w+)\.", context):
                if source in holds:
                    holds.add(name)
            found = [n for n in re.findall(r"VAR (\w+) =", context) if n in holds]
        elif query.startswith("Question: What are the 10 most common"):
            listed = re.findall(r"\d+\. ([a-z]+)", context)
            counts = {w: listed.count(w) for w in listed}
            found = sorted(counts, key=lambda w: (-counts[w], listed.index(w)))[:10]
            found.sort(key=listed.index)
        else:
            asked = re.findall(r"[a-z]+-[a-z]+", query.split("for ", 1)[1].split(" mentioned")[0])
            needles = self.NEEDLE.findall(context)
            found = [v for key in asked for k, v in needles if k == key]
        return found[::-1]

    def next_token_stats(self, ids: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
        tokens = [int(i) for i in ids]
        colon = max(j for j in range(start) if ":" in self.words.decode(np.asarray([tokens[j]])))
        answers = self.solve(self.words.decode(np.asarray(tokens[: colon + 1])))
        pieces = {a: [int(t) for t in self.words.encode(" " + a)] for a in answers}
        predicted = []
        for j in range(start, len(tokens)):
            given = tokens[colon + 1 : j]
            cut = max((i for i, t in enumerate(given) if t == self.comma), default=-1)
            done = self.words.decode(np.asarray(given[: max(cut, 0)])).replace(" ", "").split(",")
            current = given[cut + 1 :]
            choice = next(
                (
                    p
                    for a, p in pieces.items()
                    if a not in done and p[: len(current)] == current and len(p) >= len(current)
                ),
                None,
            )
            if choice is None:
                predicted.append(-1)
            else:
                predicted.append(choice[len(current)] if len(current) < len(choice) else self.comma)
        out = np.asarray(predicted)
        return out, np.where(out == np.asarray(tokens[start:]), 0.0, 20.0)


def _remove_answers(sample: tasks.EvalSample) -> tasks.EvalSample:
    """The sample with what answers it taken out of the context: the asked needles (niah), the
    assignment chain (vt), every occurrence of the ten common words (cwe)."""
    context = sample.context
    if sample.task == "cwe":
        for word in sample.answers:
            context = re.sub(rf"\d+\. {word}(?= |$)", "", context)
    else:
        for needle in sample.needles:
            if any(answer in needle for answer in sample.answers) or sample.task == "vt":
                context = context.replace(needle, "")
    return dataclasses.replace(sample, context=context)


@pytest.fixture(scope="module")
def words() -> text.EvalTokenizer:
    return text.load(None)  # SmolLM2's, built from the packaged GGUF


def _subject(model: Any, words: text.EvalTokenizer) -> subject.Subject:
    return subject.Subject("test", "test", "0" * 12, model, words)


def test_the_needle_is_in_the_context_and_the_whole_sample_fits_the_length(
    words: text.EvalTokenizer,
) -> None:
    for task in tasks.TASKS:
        for sample in tasks.generate(task, words, 1024, 3, 7, tasks.Haystack()):
            assert words.count(sample.prompt + sample.target) <= 1024
            assert all(needle in sample.context for needle in sample.needles)
            assert all(answer in sample.context for answer in sample.answers)
    again = tasks.generate("niah_multikey", words, 1024, 3, 7, tasks.Haystack())
    assert again == tasks.generate("niah_multikey", words, 1024, 3, 7, tasks.Haystack())


def test_an_oracle_that_reads_the_one_document_context_scores_1(
    words: text.EvalTokenizer, tmp_path: Path
) -> None:
    """The needle inside a one-document haystack: a model that finds it must score 1.0."""
    document = (
        "Paris is the capital and largest city of France. It lies on the Seine, in the north of "
        "the country, and for centuries it has been a centre of finance, diplomacy, commerce, "
        "fashion and science. The city is divided into twenty arrondissements, spiralling out "
        "from the Louvre."
    )  # 62 tokens: one copy fits in 160 tokens beside the needle and the question, two do not
    haystack = tmp_path / "one.jsonl"
    haystack.write_text(json.dumps({"text": document}) + "\n")
    evaluation = Evaluation.model_validate(
        {"tasks": ["niah_single"], "samplesPerTask": 4, "haystack": {"uri": str(haystack)}}
    )
    results = runner.evaluate(_subject(InductionOracle(), words), evaluation, [160])
    assert results["haystack"] == "documents"
    assert [(s["n"], s["correct"], s["score"]) for s in results["scores"]] == [(4, 4, 1.0)]
    for sample in tasks.generate("niah_single", words, 160, 4, 0, tasks.Haystack([document])):
        assert sample.context.count(document) == 1 and sample.needles[0] in sample.context


@pytest.mark.parametrize("task", sorted(tasks.TASKS))
def test_every_task_scores_1_for_a_reader_and_0_when_its_answers_are_taken_out(
    task: str, words: text.EvalTokenizer
) -> None:
    """The reading oracle answers in reverse order: multi-answer tasks are credited in any
    order (RULER's string_match_all), and only for what is in the context."""
    hay = tasks.Haystack(["Paris is the capital of France. " * 20]) if task == "topical" else None
    samples = tasks.generate(task, words, 1024, 3, 5, hay or tasks.Haystack())
    oracle = _subject(ReadingOracle(words), words)
    for sample in samples:
        assert runner._score(oracle, *runner.tokenized(words, sample)[1:]).credit == 1.0
        removed = _remove_answers(sample)
        assert not any(a in removed.context for a in sample.answers if len(a) > 3)
        assert runner._score(oracle, *runner.tokenized(words, removed)[1:]).credit == 0.0


def test_a_multi_answer_sample_earns_the_fraction_of_answers_given(
    words: text.EvalTokenizer,
) -> None:
    """RULER's partial credit: two of four values found scores 0.5, not 0."""
    (sample,) = tasks.generate("niah_multivalue", words, 512, 1, 3, tasks.Haystack())
    kept = sample.needles[1::2]  # two of the four needles stay
    context = sample.context
    for needle in sample.needles[::2]:
        context = context.replace(needle, "")
    half = dataclasses.replace(sample, context=context)
    scored = runner._score(
        _subject(ReadingOracle(words), words), *runner.tokenized(words, half)[1:]
    )
    assert scored.credit == 0.5 and not scored.correct and len(kept) == 2


def test_the_oracle_retrieves_the_right_key_among_distractor_needles(
    words: text.EvalTokenizer,
) -> None:
    evaluation = Evaluation(tasks=["niah_multikey"], samples_per_task=4)
    results = runner.evaluate(_subject(InductionOracle(), words), evaluation, [256])
    assert results["scores"][0]["score"] == 1.0


def test_the_oracle_scores_0_when_the_needle_is_taken_out(words: text.EvalTokenizer) -> None:
    """The scorer credits finding the needle, not the question's wording."""
    for sample in tasks.generate("niah_single", words, 256, 4, 0, tasks.Haystack()):
        stripped = sample.context.replace(sample.needles[0], "")
        prompt = words.encode(f"{stripped}\n\n{sample.query}")
        target = words.encode(sample.target)
        predicted, _ = InductionOracle().next_token_stats(
            np.concatenate([prompt, target]), len(prompt)
        )
        assert not np.array_equal(predicted, target)


def test_a_random_model_scores_near_0_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    """`litelong eval` on the tiny preset (fresh weights): one task, one length, on the CPU."""
    out = tmp_path / "eval"
    result = cli(
        "eval",
        "litelong/tiny",
        "--tasks",
        "niah_single",
        "--length",
        "256",
        "--samples",
        "5",
        "--out",
        str(out),
    )
    assert result.code == 0, result.stderr
    assert "niah_single" in result.stdout and "0.00 [0.00-0.43]" in result.stdout
    results = json.loads((out / "results.json").read_text())
    (row,) = results["scores"]
    assert (row["task"], row["length"], row["n"], row["correct"]) == ("niah_single", 256, 5, 0)
    assert row["answer_nll"] > 5  # about ln(49152) = 10.8: no better than chance
    assert "<img" in (out / "report.html").read_text()


def test_a_task_that_cannot_fit_its_length_is_an_error_not_a_longer_sample(
    cli: Cli, tmp_path: Path
) -> None:
    """cwe's ten words x4 and its instructions need ~370 tokens: at 256 it must not run long."""
    args = ["eval", "litelong/tiny", "--tasks", "cwe", "--length", "256", "--samples", "1"]
    result = cli(*args, "--out", str(tmp_path / "e"))
    assert result.code == 2
    assert "task cwe does not fit in --length 256" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "e").exists()


def _hf_folder(folder: Path, seed: int, words: text.EvalTokenizer) -> Path:
    from litelong.api.v1alpha1.trainingjob import ModelSource
    from litelong.cli import tempfile_tokenizer
    from litelong.train.export import save_hf
    from litelong.train.loading import load_model

    model = load_model(ModelSource(name="litelong/tiny"), 256, None, seed, False)
    with tempfile_tokenizer(words) as tokenizer_file:
        return save_hf(model, 256, tokenizer_file, folder)


def test_new_weights_at_the_same_path_are_evaluated_again(
    cli: Cli, tmp_path: Path, words: text.EvalTokenizer
) -> None:
    """A model given by path is identified by its files' size and mtime, not the path alone."""
    model = _hf_folder(tmp_path / "model", 0, words)
    args = ["eval", str(model), "--tasks", "niah_single", "--length", "256", "--samples", "1"]
    args += ["--store", f"file://{tmp_path / 'store'}"]
    assert cli(*args).code == 0
    again = cli(*args)
    assert again.code == 0 and "already evaluated" in again.stdout
    other = _hf_folder(tmp_path / "other", 1, words)
    (model / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    changed = cli(*args)
    assert changed.code == 0, changed.stderr
    assert "already evaluated" not in changed.stdout and "evaluated in" in changed.stdout


def test_rewritten_haystack_documents_change_the_results_identity(tmp_path: Path) -> None:
    import os

    haystack = tmp_path / "hay.jsonl"
    haystack.write_text(json.dumps({"text": "first version of the filler"}) + "\n")
    evaluation = Evaluation.model_validate({"haystack": {"uri": str(haystack)}})
    named = subject.Naming("m", "m", "0" * 12)
    before = runner.identity(named, evaluation, [256])
    assert runner.identity(named, evaluation, [256]) == before
    haystack.write_text(json.dumps({"text": "second, longer version of the filler"}) + "\n")
    os.utime(haystack, (1, 1))
    assert runner.identity(named, evaluation, [256]) != before


def test_eval_rejects_an_unknown_task_with_exit_2(cli: Cli, tmp_path: Path) -> None:
    result = cli("eval", "litelong/tiny", "--tasks", "niah_nope", "--out", str(tmp_path / "e"))
    assert result.code == 2
    assert "tasks" in result.stderr


def test_wilson_interval_covers_the_proportion_and_stays_in_0_1() -> None:
    assert wilson(0, 10)[0] == 0.0 and 0.25 < wilson(0, 10)[1] < 0.35
    low, high = wilson(10, 10)
    assert high == pytest.approx(1.0) and 0.65 < low < 0.75
    low, high = wilson(50, 100)
    assert low < 0.5 < high and high - low == pytest.approx(0.19, abs=0.01)


def test_position_buckets_double_up_to_the_length() -> None:
    assert buckets(8192) == [(0, 1024), (1024, 2048), (2048, 4096), (4096, 8192)]
    assert buckets(3000) == [(0, 1024), (1024, 2048), (2048, 3000)]


def test_decontamination_finds_text_from_the_training_data_and_not_fresh_text(
    words: text.EvalTokenizer,
) -> None:
    seen = words.encode(
        "The quick brown fox jumps over the lazy dog near the river bank today. " * 3
    )
    ngrams = TrainingNgrams([seen])
    copied = words.encode(
        "Intro. The quick brown fox jumps over the lazy dog near the river bank today."
    )
    fresh = words.encode(
        "A completely different sentence about compilers and their many passes here."
    )
    assert ngrams.found(copied).size > 0
    assert ngrams.found(fresh).size == 0


# -- a trained TrainingJob: export and eval ----------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ArtifactStore]:
    """A committed tiny TrainingJob (4 steps of 256 tokens) on a real SynthesisRun."""
    from litelong.stages import run_shard
    from litelong.train.loop import train
    from litelong.train.parallel import stop

    from .conftest import bm25index, commit_topics

    store = ArtifactStore(f"file://{tmp_path_factory.mktemp('eval')}")
    run_shard(bm25index("wiki", corpus=[{"uri": "builtin://wiki_vital_en.jsonl.zst"}]), store, 0, 1)
    commit_topics(store, [("SCI004000", "Science", "Black holes", "Black holes astronomy")])
    synthesis = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "SynthesisRun",
            "metadata": {"name": "samples"},
            "spec": {
                "topicDebateRef": "topics",
                "indexRef": "wiki",
                "targetTokens": 1024,
                "samplesPerTopic": 2,
                "output": {"format": "mds"},
            },
        }
    )
    assert run_shard(synthesis, store, 0, 1).manifest is not None
    job = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "tiny"},
            "spec": {
                "synthesisRunRef": "samples",
                "model": {"name": "litelong/tiny"},
                "contextLength": 256,
                "ropeTheta": 50000.0,
                "steps": 4,
                "learningRate": 1.0e-3,
                "batchTokens": 256,
                "parallelism": {"nodes": 1, "gpusPerNode": 1},
                "output": {"store": store.uri},
            },
        }
    )
    assert isinstance(job, TrainingJob)
    try:
        train(job, store)
    finally:
        stop()
    return job, store


def test_export_loads_in_transformers_with_the_trainer_s_logits(
    trained: tuple[Any, ArtifactStore], cli: Cli, tmp_path: Path
) -> None:
    import yaml
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from litelong.train.context_parallel import ContextParallel
    from litelong.train.export import load_trained
    from litelong.train.model import AttentionBatch

    job, store = trained
    manifest = tmp_path / "job.yaml"
    manifest.write_text(
        yaml.safe_dump(job.model_dump(mode="json", by_alias=True, exclude_none=True))
    )
    out = tmp_path / "hf"
    result = cli("export", str(manifest), "--out", str(out), "--store", store.uri)
    assert result.code == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    rope = config.get("rope_theta") or config["rope_parameters"]["rope_theta"]
    assert rope == 50000.0
    assert (out / "model.safetensors").is_file() and (out / "generation_config.json").is_file()

    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = torch.tensor([tokenizer("Black holes bend light around them.")["input_ids"]])
    ours = load_trained(job, store).eval()
    with torch.no_grad():
        hidden = ours.hidden_states(
            ids, torch.arange(ids.shape[1]), AttentionBatch(None, ContextParallel())
        )
        expected = hidden @ ours.lm_head.weight.t()
        got = hf(ids).logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    again = cli("export", str(manifest), "--out", str(out), "--store", store.uri)
    assert again.code == 2 and "not empty" in again.stderr


def test_export_by_name_sets_the_tokenizer_s_end_of_text_so_generate_stops(
    trained: tuple[Any, ArtifactStore], cli: Cli, tmp_path: Path
) -> None:
    """bos/eos/pad in config.json and generation_config.json are the tokenizer's own tokens;
    `generate()` stops at eos (here forced by a logits processor: the tiny model is random)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    _job, store = trained
    out = tmp_path / "hf"
    result = cli("export", "trainingjob/tiny", "--out", str(out), "--store", store.uri)
    assert result.code == 0, result.stderr
    tokenizer = AutoTokenizer.from_pretrained(out)
    config = json.loads((out / "config.json").read_text())
    generation = json.loads((out / "generation_config.json").read_text())
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")  # SmolLM2's end of text
    assert tokenizer.eos_token_id == eos and tokenizer.pad_token_id is not None
    for written in (config, generation):
        assert written["eos_token_id"] == eos and written["pad_token_id"] == tokenizer.pad_token_id

    def end_at_third(ids: Any, scores: Any) -> Any:
        if ids.shape[1] >= prompt.shape[1] + 2:
            scores[:, :] = -float("inf")
            scores[:, eos] = 0.0
        return scores

    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    prompt = torch.tensor([tokenizer("Black holes")["input_ids"]])
    made = hf.generate(prompt, logits_processor=LogitsProcessorList([end_at_third]))
    assert made.shape[1] == prompt.shape[1] + 3 and int(made[0, -1]) == eos


def test_export_of_an_untrained_job_says_not_committed_before_loading_weights(
    trained: tuple[Any, ArtifactStore], cli: Cli, tmp_path: Path
) -> None:
    import yaml

    job, store = trained
    document = job.model_dump(mode="json", by_alias=True, exclude_none=True)
    document["metadata"]["name"] = "never-trained"
    document["spec"]["model"] = {"name": str(tmp_path / "no-such-model")}  # would fail to load
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(document))
    result = cli("export", str(manifest), "--out", str(tmp_path / "hf"), "--store", store.uri)
    assert result.code == 2
    assert "TrainingJob/never-trained: not committed" in result.stderr
    assert not (tmp_path / "hf").exists()


def test_eval_of_a_training_job_checks_overlap_with_its_training_data(
    trained: tuple[Any, ArtifactStore], cli: Cli, tmp_path: Path
) -> None:
    """The topical haystack is drawn from the index the samples came from: overlap expected
    and reported; RULER's noise haystack shares nothing with it. The results commit once."""
    _job, store = trained
    topical = tmp_path / "topical.jsonl"
    source = store.latest_committed("SynthesisRun", "samples")
    from litelong.train.data import TrainingData

    data = TrainingData(source, 256, 0)
    texts = [text.load(None).decode(data.sequence(i).tokens) for i in range(3)]
    topical.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    args = [
        "eval",
        "trainingjob/tiny",
        "--store",
        store.uri,
        "--tasks",
        "niah_single,topical",
        "--topic-documents",
        str(topical),
        "--length",
        "256",
        "--samples",
        "3",
    ]
    first = cli(*args)
    assert first.code == 0, first.stderr
    assert "overlap with training data: topical" in first.stdout
    second = cli(*args)
    assert second.code == 0 and "already evaluated" in second.stdout
    (artifact,) = [a for a in store.artifacts() if a.kind.lower() == "evaluation"]
    results = json.loads(next(Path(artifact.path).glob("part-*/results.json")).read_text())
    found = results["decontamination"]["tasks"]
    assert found["niah_single"]["contaminated"] == 0
    assert found["topical"]["contaminated"] > 0 and found["topical"]["examples"]


def test_a_training_job_s_evaluation_block_runs_after_training_without_retraining(
    trained: tuple[Any, ArtifactStore], cli: Cli, tmp_path: Path
) -> None:
    import yaml

    job, store = trained
    document = job.model_dump(mode="json", by_alias=True, exclude_none=True)
    document["spec"]["evaluation"] = {
        "lengths": [256],
        "tasks": ["niah_single"],
        "samplesPerTask": 2,
    }
    assert parse(document).spec_hash() == job.spec_hash()  # evaluation never retrains
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(document))
    result = cli("train", "--spec", str(manifest), "--store", store.uri)
    assert result.code == 0, result.stderr
    assert "already committed" in result.stdout and "niah_single" in result.stdout
    committed = [a for a in store.artifacts() if a.kind.lower() == "evaluation"]
    assert any(a.committed_manifest() is not None and a.name == "tiny" for a in committed)


def test_litelong_run_evaluates_a_changed_evaluation_block_of_a_committed_job(
    trained: tuple[Any, ArtifactStore], cli: Cli, tmp_path: Path
) -> None:
    import yaml

    job, store = trained
    document = job.model_dump(mode="json", by_alias=True, exclude_none=True)
    document["spec"]["evaluation"] = {"lengths": [320], "tasks": ["vt"], "samplesPerTask": 1}
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump(document))
    result = cli("run", str(manifest), "--store", store.uri)
    assert result.code == 0, result.stderr
    assert "TrainingJob/tiny: already committed" in result.stdout
    assert "evaluated in" in result.stdout and "vt" in result.stdout


def test_the_examples_in_docs_eval_md_run(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first `sh` block runs as written; the `yaml` block is a valid TrainingJob. (The
    export block needs a committed job: test_export_loads_in_transformers_... runs it.)"""
    import re
    import shlex

    import yaml

    page = (Path(__file__).resolve().parents[1] / "docs" / "eval.md").read_text()
    blocks = re.findall(r"```(\w+)\n(.*?)```", page, re.S)
    command = shlex.split(next(body for lang, body in blocks if lang == "sh").strip())
    assert command[:2] == ["litelong", "eval"]
    monkeypatch.chdir(tmp_path)
    result = cli(*command[1:])
    assert result.code == 0, result.stderr
    assert (tmp_path / "eval-tiny" / "results.json").is_file()
    (manifest,) = [body for lang, body in blocks if lang == "yaml"]
    job = parse(yaml.safe_load(manifest))
    assert isinstance(job, TrainingJob) and job.spec.evaluation is not None
    assert "topical" in job.spec.evaluation.tasks
