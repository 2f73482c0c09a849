"""The pod as a whole: it starts with no configuration, is found through NodeInfo,
refuses bad configuration clearly, mails through a real SMTP server, guards its data
folder and shuts down cleanly."""

import json
import re
import os
import signal
import subprocess
import tempfile
from pathlib import Path

import jsonschema
import pytest

from rig import REFERENCE, Pod, binary, free_port, wait_until


def schema(version):
    return json.loads((REFERENCE / f"nodeinfo-{version}.schema.json").read_text())


@pytest.mark.parametrize("version", ["2.0", "2.1"])
def test_nodeinfo_validates_against_the_official_schema(start_pod, version):
    pod = start_pod()
    links = pod.get("/.well-known/nodeinfo").json()["links"]
    href = next(l["href"] for l in links if l["rel"].endswith(f"/schema/{version}"))
    assert href == f"{pod.url}/nodeinfo/{version}"
    response = pod.get(f"/nodeinfo/{version}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    jsonschema.Draft4Validator(schema(version)).validate(doc)
    assert doc["software"]["name"] == "lifeboat"
    assert doc["protocols"] == ["diaspora"]
    assert doc["metadata"]["acceptsBackups"] is False, "backups are off unless the podmin opts in"
    assert doc["metadata"]["backupMaxBytes"] == 16 * 1024 * 1024


def test_nodeinfo_announces_backups_when_the_podmin_opts_in(start_pod):
    pod = start_pod(env={"LIFEBOAT_BACKUPS_ALLOW_BACKUPS_AND_MIGRATION": "true", "LIFEBOAT_BACKUPS_MAX_BACKUP_BYTES": "65536"})
    doc = pod.get("/nodeinfo/2.1").json()
    jsonschema.Draft4Validator(schema("2.1")).validate(doc)
    assert doc["metadata"]["acceptsBackups"] is True
    assert doc["metadata"]["backupMaxBytes"] == 65536


def test_serve_starts_with_no_configuration_at_all():
    """`lifeboat serve` in an empty folder: 127.0.0.1:8080 (or the given --listen),
    data in ./lifeboat-data, mail as .eml files."""
    with tempfile.TemporaryDirectory() as cwd:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIFEBOAT_")}
        proc = subprocess.Popen([str(binary()), "serve", "--listen", f"127.0.0.1:{port}"], cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)
        try:
            import requests

            wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), what="the pod")
            assert requests.get(f"http://127.0.0.1:{port}/").status_code == 200
            assert (Path(cwd) / "lifeboat-data" / "db").is_dir()
            result = subprocess.run([str(binary()), "mail", "test", "--to", "podmin@example.org"], cwd=cwd, env=env, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
            emls = list((Path(cwd) / "lifeboat-data" / "outbox").glob("*.eml"))
            assert len(emls) == 1
            assert re.search(r"^To: <?podmin@example.org>?$", emls[0].read_text(), re.M)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0


def _answers(url):
    import requests

    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_a_configuration_with_three_mistakes_is_refused_listing_all_three(tmp_path):
    config = tmp_path / "lifeboat.toml"
    config.write_text('[server]\nlisten = "not an address"\n\n[accounts]\nkey_bits = 1000\n\n[federation]\nallow_hhtp = true\n')
    result = subprocess.run([str(binary()), "serve", "--config", str(config), "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "panicked" not in result.stderr
    assert "server.listen" in result.stderr
    assert "accounts.key_bits" in result.stderr
    assert "federation.allow_hhtp: unknown option" in result.stderr
    assert not (tmp_path / "data").exists(), "nothing is created from a refused configuration"


def test_unknown_environment_variables_are_warnings_and_bad_values_errors(tmp_path):
    env = dict(os.environ, LIFEBOAT_SERVER_LISTN="x", LIFEBOAT_BACKUPS_KDF_TIME_COST="forever")
    result = subprocess.run([str(binary()), "config", "check"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "LIFEBOAT_SERVER_LISTN is not a lifeboat option" in result.stderr
    assert "LIFEBOAT_BACKUPS_KDF_TIME_COST" in result.stderr


def test_the_shipped_example_configuration_loads(tmp_path):
    result = subprocess.run([str(binary()), "config", "check", "--config", str(Path(__file__).resolve().parents[2] / "lifeboat.example.toml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_command_explains_itself():
    commands = [[], ["serve"], ["check"], ["config"], ["config", "example"], ["config", "check"], ["mail"], ["mail", "test"]]
    for args in commands:
        result = subprocess.run([str(binary()), *args, "--help"], capture_output=True, text=True)
        assert result.returncode == 0, (args, result.stderr)
        assert "Usage:" in result.stdout, args


def test_a_message_through_smtp_arrives_with_the_right_headers(start_pod, smtp):
    pod = start_pod()
    pod.cli("mail", "test", "--to", "podmin@example.org")
    message = smtp.wait_for("podmin@example.org", "test message")
    assert message["From"] == "lifeboat@pod.test"
    assert message["To"] == "podmin@example.org"
    assert pod.host in message["Subject"]
    assert message["Date"] and message["Message-ID"]
    assert pod.url in smtp.body(message)


def test_a_second_process_on_the_same_data_folder_fails_clearly(start_pod):
    pod = start_pod()
    second = Pod(name="second", data_dir=pod.data_dir)
    result = subprocess.run([str(binary()), "serve"], env=second.env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "in use by another lifeboat process" in result.stderr
    assert pod.get("/healthz").status_code == 200, "the first keeps running"


def test_podmin_commands_reach_a_running_server_and_work_without_one(start_pod):
    pod = start_pod()
    running = pod.cli("check")
    assert "store OK" in running.stdout
    assert "admin command" in pod.log()
    socket = pod.data_dir / "admin.sock"
    assert oct(socket.stat().st_mode & 0o777) == "0o600"
    pod.stop()
    offline = pod.cli("check")
    assert "store OK" in offline.stdout


def test_sigterm_finishes_cleanly_and_the_store_reopens(start_pod):
    pod = start_pod()
    assert pod.stop(signal.SIGTERM) == 0
    assert "store flushed" in pod.log()
    pod.start()
    assert pod.get("/healthz").status_code == 200


def test_query_strings_never_reach_the_log(start_pod):
    pod = start_pod()
    pod.get("/restore_backup/confirm?token=supersecrettoken123")
    pod.get("/nodeinfo/2.1?x=anothersecret")
    log = pod.log()
    assert "/nodeinfo/2.1" in log
    assert "supersecrettoken123" not in log and "anothersecret" not in log


def test_front_page_renders_in_a_real_browser(start_pod, browser):
    pod = start_pod()
    browser.get(pod.url + "/")
    assert "lifeboat" in browser.title
    assert pod.host in browser.find_element("tag name", "h1").text


def test_the_systemd_unit_verifies(tmp_path):
    unit = (Path(__file__).resolve().parents[2] / "systemd" / "lifeboat.service").read_text()
    assert "User=lifeboat" in unit and "Type=notify" in unit and "ProtectSystem=strict" in unit and "NoNewPrivileges=yes" in unit and "SystemCallFilter=" in unit
    # verify needs the ExecStart binary to exist: point it at the one just built.
    (tmp_path / "lifeboat.service").write_text(unit.replace("/usr/bin/lifeboat", str(binary())))
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "lifeboat.service")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_systemd_hears_ready_watchdog_pings_and_stopping(start_pod, tmp_path):
    """As a `Type=notify` unit: READY=1 once the pod answers, WATCHDOG=1 at half the
    interval systemd asks for while the store commits, STOPPING=1 on SIGTERM."""
    import socket
    import threading

    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(0.2)
    heard = []
    done = threading.Event()

    def listen():
        while not done.is_set():
            try:
                heard.append(server.recv(4096).decode())
            except socket.timeout:
                continue

    listener = threading.Thread(target=listen)
    listener.start()
    try:
        pod = start_pod(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"})
        wait_until(lambda: any(m.startswith("READY=1") for m in heard), what="READY=1")
        assert pod.get("/nodeinfo/2.1").status_code == 200
        wait_until(lambda: sum(m == "WATCHDOG=1" for m in heard) >= 3, what="three watchdog pings")
        assert any("STATUS=serving" in m for m in heard), heard
        pod.stop()
        wait_until(lambda: any(m.startswith("STOPPING=1") for m in heard), what="STOPPING=1")
    finally:
        done.set()
        listener.join()
        server.close()
