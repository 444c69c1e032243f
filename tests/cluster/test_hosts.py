"""The harness itself: tasks reach the worker host, the worker does not see the head's
files, the store's PostgreSQL and S3 answer other hosts, and a host can join and die.

Each snippet runs in its own process on its host (a driver joins as a real client would).
"""

from __future__ import annotations

import json
import textwrap
import uuid

from tests.cluster.hosts import Network, wait_for_nodes

WHERE_AND_WHAT = """
import json, os, ray

ray.init()  # RAY_ADDRESS and the token come from the harness


@ray.remote(num_cpus=1)
def look(path):
    return ray.util.get_node_ip_address(), os.path.exists(path)


path = {path!r}
print(json.dumps({{"driver_sees": os.path.exists(path), "task": ray.get(look.remote(path))}}))
"""


def test_task_runs_on_worker_which_cannot_see_head_files(hosts: Network) -> None:
    hosts.head_dir.mkdir(exist_ok=True)
    secret = hosts.head_dir / f"only-on-head-{uuid.uuid4().hex}.txt"
    secret.write_text("head's file")  # written from the root namespace

    out = json.loads(hosts["head"].python(WHERE_AND_WHAT.format(path=str(secret))))

    ip, worker_sees = out["task"]
    assert ip == hosts["worker"].ip  # the head has 0 CPUs: a 1-CPU task goes to the worker
    assert out["driver_sees"] is True  # the head sees its own files...
    assert worker_sees is False  # ...the worker does not
    assert not hosts["worker"].run(["ls", "-A", str(hosts.head_dir)]).stdout.strip()


def test_postgres_reachable_from_head(hosts: Network) -> None:
    code = textwrap.dedent(f"""
        import psycopg
        with psycopg.connect({hosts.postgres.dsn!r}) as conn:
            row = conn.execute(
                "SELECT current_user, current_database(), host(inet_client_addr())"
            ).fetchone()
        print(" ".join(row))
    """)
    out = hosts["head"].python(code).split()
    assert out == ["reasoning", "reasoning", hosts["head"].ip]  # over the network, from .11
    assert hosts.postgres.url.startswith(
        f"postgresql+psycopg://reasoning:{hosts.postgres.password}@"
    )


def test_s3_reachable_from_worker(hosts: Network) -> None:
    s3 = hosts.s3
    key = f"reasoning/smoke/{uuid.uuid4().hex}.bin"
    code = textwrap.dedent(f"""
        import os
        from pyarrow import fs
        s3 = fs.S3FileSystem(
            access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            region=os.environ["AWS_REGION"],
            endpoint_override=os.environ["AWS_ENDPOINT_URL_S3"],
            scheme="http",
        )
        with s3.open_output_stream({key!r}) as out:
            out.write(b"from the worker")
        with s3.open_input_stream({key!r}) as back:
            print(back.read().decode())
    """)
    assert hosts["worker"].python(code, s3.env).strip() == "from the worker"


def test_a_worker_host_joins_and_dies(hosts: Network) -> None:
    extra = hosts.add_worker("extra", num_cpus=1)
    assert extra.pids()
    assert sorted(wait_for_nodes(hosts, 3)) == sorted(
        [hosts["head"].ip, hosts["worker"].ip, extra.ip]
    )

    extra.kill_all()  # the host dies: every process in its namespace, SIGKILLed

    assert extra.pids() == []
    alive = wait_for_nodes(hosts, 2, exact=True, timeout=60)  # the GCS notices
    assert extra.ip not in alive
