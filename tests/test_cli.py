"""The `vqcodec` command end to end, in process: outputs, messages and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from bitstream.format import FORMAT_VERSION
from codec.cli import main
from codec.models import ModelConfig
from tests.helpers import header_only_png, make_exported, random_image


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(random_image(50, 70)).save(path)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_compress_then_decompress_with_the_default_model(tmp_path, photo, tiny_zoo, capsys):
    code, out, _ = run(capsys, "compress", photo, tmp_path / "photo.bin")
    assert code == 0
    size = (tmp_path / "photo.bin").stat().st_size
    assert f"{8 * size / (50 * 70):.4f} bpp" in out and "PSNR" in out
    code, out, _ = run(capsys, "decompress", tmp_path / "photo.bin", tmp_path / "back.png")
    assert code == 0
    assert Image.open(tmp_path / "back.png").size == (70, 50)


def test_grayscale_decodes_as_grayscale(tmp_path, tiny_zoo, capsys):
    Image.fromarray(random_image(20, 20)[..., 0]).save(tmp_path / "gray.png")
    assert run(capsys, "compress", tmp_path / "gray.png", tmp_path / "gray.bin")[0] == 0
    assert run(capsys, "decompress", tmp_path / "gray.bin", tmp_path / "out.png")[0] == 0
    assert Image.open(tmp_path / "out.png").mode == "L"


def test_info_prints_the_header(tmp_path, photo, tiny_zoo, capsys):
    run(capsys, "compress", photo, tmp_path / "photo.bin")
    code, out, _ = run(capsys, "info", tmp_path / "photo.bin")
    assert code == 0
    assert f"format version: {FORMAT_VERSION}" in out and "70x50 RGB" in out and "(tiny)" in out
    assert f"payload:        {(tmp_path / 'photo.bin').stat().st_size - 40} bytes" in out


def test_existing_output_is_refused_unless_forced(tmp_path, photo, tiny_zoo, capsys):
    target = tmp_path / "photo.bin"
    target.write_bytes(b"precious")
    code, _, err = run(capsys, "compress", photo, target)
    assert code == 1 and "already exists (use --force to overwrite)" in err
    assert target.read_bytes() == b"precious"
    assert run(capsys, "compress", photo, target, "--force")[0] == 0
    assert target.read_bytes()[:4] == b"VQCB"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d[:-7], "truncated"),
        (lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], "CRC mismatch"),
        (lambda d: b"XXXX" + d[4:], "wrong magic"),
        (lambda d: d[:4] + b"\x09" + d[5:], "unsupported format version 9"),
        (lambda d: b"", "wrong magic"),
    ],
)
def test_damaged_files_are_refused_with_a_reason(tmp_path, photo, tiny_zoo, capsys, damage, message):
    run(capsys, "compress", photo, tmp_path / "photo.bin")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(damage((tmp_path / "photo.bin").read_bytes()))
    code, _, err = run(capsys, "decompress", bad, tmp_path / "out.png")
    assert code == 1 and message in err and err.count("\n") == 1
    assert not (tmp_path / "out.png").exists()


def test_file_of_a_model_that_is_not_installed(tmp_path, photo, tiny_zoo, capsys):
    other = make_exported(tmp_path, ModelConfig("vq", N=8, M=8, dim=2, codebook_size=8), seed=1, name="other.pt")
    run(capsys, "compress", photo, tmp_path / "photo.bin", "--model", other)
    code, _, err = run(capsys, "decompress", tmp_path / "photo.bin", tmp_path / "out.png")
    assert code == 1 and "which is not installed" in err
    assert run(capsys, "decompress", tmp_path / "photo.bin", tmp_path / "out.png", "--model", other)[0] == 0


def test_decompress_with_the_wrong_model_file(tmp_path, photo, tiny_zoo, tiny_uq_path, capsys):
    run(capsys, "compress", photo, tmp_path / "photo.bin")
    code, _, err = run(capsys, "decompress", tmp_path / "photo.bin", tmp_path / "out.png", "--model", tiny_uq_path)
    assert code == 1 and "another model than the one given" in err


def test_unknown_model_name(tmp_path, photo, tiny_zoo, capsys):
    code, _, err = run(capsys, "compress", photo, tmp_path / "x.bin", "--model", "nonesuch")
    assert code == 1 and "no model named 'nonesuch' (shipped: tiny)" in err


@pytest.mark.parametrize("content, message", [(None, "does not exist"), (b"just text", "not an image")])
def test_bad_image_inputs(tmp_path, tiny_zoo, capsys, content, message):
    source = tmp_path / "input.png"
    if content is not None:
        source.write_bytes(content)
    code, _, err = run(capsys, "compress", source, tmp_path / "out.bin")
    assert code == 1 and message in err and not (tmp_path / "out.bin").exists()


def test_folder_with_good_and_bad_files(tmp_path, tiny_zoo, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(random_image(20, 24)).save(folder / name)
    (folder / "broken.png").write_bytes((folder / "a.png").read_bytes()[:60])
    (folder / "readme.txt").write_text("not an image")
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.bin").write_bytes(b"keep me")
    code, stdout, err = run(capsys, "compress", folder, out)
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.bin", "b.bin"]
    assert (out / "b.bin").read_bytes() == b"keep me"
    assert "broken.png" in err and "readme.txt" in err and "3 of 4 files failed" in err
    assert "1 compressed" in stdout


def test_forced_folder_run_leaves_the_outputs_of_failed_inputs_alone(tmp_path, tiny_zoo, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    Image.fromarray(random_image(20, 24)).save(folder / "good.png")
    (folder / "broken.png").write_bytes((folder / "good.png").read_bytes()[:60])
    header_only_png(folder / "huge.png", 70_000, 8)
    (folder / "notes.txt").write_text("not an image")
    for name in ("broken.bin", "huge.bin", "notes.bin"):
        (out / name).write_bytes(b"earlier output")
    code, _, err = run(capsys, "compress", folder, out, "--force")
    assert code == 1 and "3 of 4 files failed" in err
    assert all((out / name).read_bytes() == b"earlier output" for name in ("broken.bin", "huge.bin", "notes.bin"))
    assert run(capsys, "decompress", out / "good.bin", tmp_path / "good.png")[0] == 0
    assert not list(out.glob(".*.part"))


def test_info_and_bad_files_answer_without_importing_torch(tmp_path, photo, tiny_zoo, capsys):
    run(capsys, "compress", photo, tmp_path / "photo.bin")
    (tmp_path / "bad.bin").write_bytes(b"VQCB\x01garbage")
    script = (
        "import sys; from codec.cli import main; "
        f"assert main(['info', r'{tmp_path / 'photo.bin'}']) == 0; "
        f"assert main(['decompress', r'{tmp_path / 'bad.bin'}', r'{tmp_path / 'o.png'}']) == 1; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "truncated" in result.stderr


def test_bad_image_is_refused_before_a_model_is_loaded(tmp_path, tiny_zoo):
    (tmp_path / "bad.png").write_text("not an image")
    script = (
        "import sys; from codec.cli import main; "
        f"assert main(['compress', r'{tmp_path / 'bad.png'}', r'{tmp_path / 'o.bin'}']) == 1; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "not an image" in result.stderr


def test_train_help_explains_every_option_and_lists_every_method(capsys):
    import dataclasses

    from codec.training.config import TrainConfig, field_docs
    from codec.training.methods import METHODS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    docs = field_docs()
    for field in dataclasses.fields(TrainConfig):
        assert field.name in docs, f"TrainConfig.{field.name} has no docstring"
        if field.name.startswith("stack_"):
            assert f"--{field.name.replace('_', '-')}" not in text  # the toy study's, not the command line's
            continue
        assert f"--{field.name.replace('_', '-')}" in text
        assert " ".join(docs[field.name].split()[:4]) in text
        assert f"(default: {field.default!r})" in text
    for name, method in METHODS.items():
        assert f"{name} {method.description}" in text


def test_train_refuses_an_unknown_choice_in_one_line(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--method", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_models_prints_a_table_with_the_default(tiny_zoo, capsys):
    code, out, _ = run(capsys, "models")
    header, row = out.splitlines()[:2]
    assert code == 0 and "Kodak bpp" in header and "PSNR" in header
    assert row.split()[:3] == ["tiny", "ours", "4"] and row.endswith("(default)")


def test_quality_picks_among_the_default_curve(tmp_path, photo, tiny_zoo, tiny_vq_path, capsys):
    from bitstream.format import parse
    from codec import zoo
    from codec.model_file import load_exported

    other = make_exported(tmp_path, ModelConfig("vq", N=8, M=8, dim=4, codebook_size=32), seed=1, name="other.pt")
    for name, path, bpp in (("tiny-q0", tiny_vq_path, 0.1), ("tiny-q1", other, 0.5)):
        (zoo.WEIGHTS / path.name).write_bytes(path.read_bytes())
        zoo.register(name, path.name, load_exported(path).model_id, {"method": "ours", "dim": 4, "kodak_bpp": bpp}, make_default=name == "tiny-q0")
    made_by = {}
    for quality in (0, 49, 50, 100):
        assert run(capsys, "compress", photo, tmp_path / f"{quality}.bin", "--quality", quality)[0] == 0
        made_by[quality] = parse((tmp_path / f"{quality}.bin").read_bytes())[0].model_id
    assert made_by[0] == made_by[49] == load_exported(tiny_vq_path).model_id
    assert made_by[50] == made_by[100] == load_exported(other).model_id
    assert run(capsys, "compress", photo, tmp_path / "x.bin", "--quality", 101)[0] == 1
    code, _, err = run(capsys, "compress", photo, tmp_path / "y.bin", "--quality", 50, "--model", "tiny-q0")
    assert code == 1 and "not both" in err


def test_toy_out_names_the_json_it_writes(tmp_path, capsys, monkeypatch):
    from codec.toy import study

    # what is tested is where the curve goes; ECVQ's own cost (minutes) is tested elsewhere
    point = {"bpd": 1.0, "psnr": 5.0}
    monkeypatch.setattr(study, "ecvq_curve", lambda source, slopes: [point])
    monkeypatch.setattr(study, "bound_curves", lambda source: {"a": ("a", [point]), "b": ("b", [point])})
    target = tmp_path / "mine.json"
    assert run(capsys, "toy", "--source", "gaussian", "--method", "ecvq", "--slope", "8", "--out", target)[0] == 0
    assert target.is_file() and not list(tmp_path.glob("gaussian_*.json"))
    code, _, err = run(capsys, "toy", "--source", "laplace", "--method", "rd-bound", "--out", tmp_path / "b.json")
    assert code == 1 and "give a folder" in err
