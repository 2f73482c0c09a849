"""pytest fixtures around the rig: `smtp`, `start_pod` (factory; every pod is stopped
at the end of the test) and `browser`."""

import pytest

from rig import Pod, SmtpSink, browser as make_browser


@pytest.fixture
def smtp():
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def start_pod(smtp):
    pods = []

    def start(name="pod", env=None, with_smtp=True, start=True, **kw):
        pod = Pod(smtp=smtp if with_smtp else None, env=env, name=name, **kw)
        pods.append(pod)
        return pod.start() if start else pod

    yield start
    for pod in pods:
        pod.close()


@pytest.fixture
def browser():
    driver = make_browser()
    yield driver
    driver.quit()
