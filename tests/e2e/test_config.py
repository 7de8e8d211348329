"""Configuration as an operator meets it: file < CAIRN_* environment < flags, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def config_file(tmp_path: Path, ports: list[int]) -> Path:
    return write_config(
        tmp_path / "cairn.toml",
        f"""
data_dir = "{tmp_path / 'from-file'}"
listen = "127.0.0.1:{ports[0]}"
advertise = "file-host:{ports[0]}"

[log]
"segment.bytes" = 2048
"retention.ms" = -1
""",
    )


def test_file_values_apply(serve, config_file: Path, tmp_path: Path, ports):
    process, ready = serve("--config", str(config_file), data_dir=None)
    assert ready["data_dir"] == str((tmp_path / "from-file").resolve())
    assert ready["listen"] == f"127.0.0.1:{ports[0]}"
    assert ready["advertise"] == f"file-host:{ports[0]}"
    loaded = process.wait_fields("configuration loaded")
    assert loaded["config_file"] == str(config_file)
    assert "segment.bytes=2048 " in loaded["log_defaults"]
    assert "retention.ms=-1 " in loaded["log_defaults"]
    assert process.stop() == 0, process.stderr


def test_env_overrides_file_and_flag_overrides_env(
    serve, config_file: Path, tmp_path: Path, ports
):
    env = {
        "CAIRN_CONFIG": str(config_file),
        "CAIRN_DATA_DIR": str(tmp_path / "from-env"),
        "CAIRN_LISTEN": f"127.0.0.1:{ports[1]}",
        "CAIRN_LOG_SEGMENT_BYTES": "4096",
    }
    # Environment over file (the file comes from CAIRN_CONFIG here).
    process, ready = serve(data_dir=None, env=env)
    assert ready["data_dir"] == str((tmp_path / "from-env").resolve())
    assert ready["listen"] == f"127.0.0.1:{ports[1]}"
    assert ready["advertise"] == f"file-host:{ports[0]}"
    loaded = process.wait_fields("configuration loaded")
    assert "segment.bytes=4096 " in loaded["log_defaults"]
    assert "retention.ms=-1 " in loaded["log_defaults"]
    assert process.stop() == 0, process.stderr

    # Flags over environment.
    process, ready = serve(
        "--listen", f"127.0.0.1:{ports[2]}", "--advertise", f"flag-host:{ports[2]}",
        data_dir=tmp_path / "from-flag", env=env,
    )
    assert ready["data_dir"] == str((tmp_path / "from-flag").resolve())
    assert ready["listen"] == f"127.0.0.1:{ports[2]}"
    assert ready["advertise"] == f"flag-host:{ports[2]}"
    assert process.stop() == 0, process.stderr


def test_config_flag_overrides_config_env(serve, config_file: Path, tmp_path: Path, ports):
    other = write_config(tmp_path / "other.toml", f'listen = "127.0.0.1:{ports[3]}"\n')
    process, ready = serve("--config", str(other), env={"CAIRN_CONFIG": str(config_file)})
    assert ready["listen"] == f"127.0.0.1:{ports[3]}"
    assert process.stop() == 0, process.stderr


def test_cairn_toml_in_the_working_directory_is_read(serve, config_file: Path, ports):
    # config_file is tmp_path/cairn.toml, and tmp_path is the server's working directory.
    process, ready = serve()
    assert ready["listen"] == f"127.0.0.1:{ports[0]}"
    assert process.stop() == 0, process.stderr


@pytest.mark.parametrize(
    ("args", "env", "file", "expected"),
    [
        ([], {"CAIRN_LOG_SEGMENT_BYTES": "10"}, None, "segment.bytes"),
        ([], {"CAIRN_LOG_RETENTION_MS": "soon"}, None, "CAIRN_LOG_RETENTION_MS"),
        ([], {"CAIRN_LOG_RETENTON_MS": "1"}, None, "CAIRN_LOG_RETENTON_MS"),
        ([], {"CAIRN_LISTEN": "localhost"}, None, "CAIRN_LISTEN"),
        ([], {}, 'lisen = "127.0.0.1:1"\n', "lisen"),
        ([], {}, '[log]\n"segment.byte" = 2048\n', "segment.byte"),
        ([], {}, '[log]\n"max.message.bytes" = 1\n', "max.message.bytes"),
        (["--config", "missing.toml"], {}, None, "missing.toml"),
        (["--listen", "0.0.0.0:9092"], {}, None, "advertise"),
    ],
    ids=[
        "segment.bytes-too-small",
        "env-not-a-number",
        "env-unknown-log-key",
        "env-bad-listen",
        "file-unknown-key",
        "file-unknown-log-key",
        "file-invalid-value",
        "missing-config-file",
        "wildcard-without-advertise",
    ],
)
def test_invalid_config_fails_fast(run_cairn, tmp_path: Path, args, env, file, expected):
    if file is not None:
        write_config(tmp_path / "cairn.toml", file)
    data_dir = tmp_path / "data"
    process = run_cairn("serve", "--data-dir", str(data_dir), *args, env=env)
    assert process.wait_exit() != 0
    errors = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, process.stderr
    assert expected in errors[0], process.stderr
    # Validation happens before anything touches the disk.
    assert not data_dir.exists()
