"""The `reasoning` command without Ray: key administration and the bind guard."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from reasoning.service.stores import Stores
from serve_app.cli import main
from serve_app.runtime import UnsafeBind, check_bind
from serve_app.settings import Settings
from tests.unit.test_stores import HOME_V0_1


def test_create_list_and_revoke_keys(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = str(tmp_path)
    assert main(["admin", "--home", home, "create-key", "--tenant", "team-a"]) == 0
    out = capsys.readouterr()
    key = next(line.split(": ")[1] for line in out.out.splitlines() if line.startswith("api key"))
    key_id = key.removeprefix("rsk_").split(".")[0]
    assert "shown only this once" in out.err
    assert main(["admin", "--home", home, "list-keys"]) == 0
    listing = capsys.readouterr().out
    assert f"{key_id}  team-a  active" in listing and key not in listing
    assert main(["admin", "--home", home, "revoke-key", key_id]) == 0
    assert main(["admin", "--home", home, "revoke-key", key_id]) == 1
    main(["admin", "--home", home, "list-keys"])
    assert "revoked" in capsys.readouterr().out


def test_show_job_gives_operators_the_whole_error(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    stores = Stores.resolve(tmp_path)
    stores.upgrade()
    jobs = stores.jobs()
    job_id = str(uuid.uuid4())
    jobs.create(job_id, "reasoning_fit", str(uuid.uuid4()), {"n_hyperopt_steps": 1})
    jobs.fail(job_id, "failed: boom", 'Traceback (most recent call last):\n  File "x.py"\n'
              "RuntimeError: boom")
    assert main(["admin", "--home", str(tmp_path), "show-job", job_id]) == 0
    out = capsys.readouterr().out
    assert "failed: boom" in out and 'File "x.py"' in out and "RuntimeError: boom" in out
    assert main(["admin", "--home", str(tmp_path), "show-job", str(uuid.uuid4())]) == 1


def test_a_bad_tenant_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["admin", "--home", str(tmp_path), "create-key", "--tenant", "Team A"]) == 2
    assert "not a valid name" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_is_fine_without_auth(host: str) -> None:
    check_bind(Settings(host=host))


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::", "myhost.example"])
def test_open_bind_without_auth_is_refused_unless_told(host: str) -> None:
    with pytest.raises(UnsafeBind, match="auth mode 'none'"):
        check_bind(Settings(host=host))
    check_bind(Settings(host=host, allow_open_bind=True))
    check_bind(Settings(host=host, auth_mode="token"))


def test_serve_refuses_an_open_bind_before_starting_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--home", str(tmp_path)]) == 2
    assert "--auth-mode token" in capsys.readouterr().err


def test_db_upgrade_migrates_a_0_1_home_and_keys_work_on_a_named_store(
    tmp_path: Path, capsys: pytest.CaptureFixture, postgres
) -> None:
    """`reasoning db upgrade` with --store: the 0.1 home's keys land in PostgreSQL, and
    `reasoning admin --store` sees them; nothing of the old home is removed."""
    home = tmp_path / "home"
    shutil.copytree(HOME_V0_1, home)
    url = postgres.create_database("cli_upgrade")
    assert main(["db", "upgrade", "--home", str(home), "--store", url]) == 0
    assert "metadata store at revision 0005" in capsys.readouterr().out
    assert main(["admin", "--home", str(home), "--store", url, "list-keys"]) == 0
    assert "alpha  active" in capsys.readouterr().out
    assert (home / "auth.sqlite").is_file()


def test_remote_stores_without_a_secret_file_are_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["db", "upgrade", "--home", str(tmp_path / "h"), "--store",
            "postgresql+psycopg://u:p@db.internal/x", "--artifacts", "s3://bucket/x"]
    assert main(argv) == 2
    assert "REASONING_SECRET_KEY_FILE" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()
