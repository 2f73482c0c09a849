"""The podmin's web page shows the held backups' figures to admins only."""

from rig import sign_in
from test_backup_holder import ON, confirmed_slot, fingerprint, key, push, seal


def test_the_admin_page_shows_backup_figures_to_admins_only(start_pod, smtp):
    pod = start_pod(env=dict(ON, LIFEBOAT_ACCOUNTS_ADMINS="root"))
    pod.cli("user", "add", "root", "--email", "root@example.org", input="root's password\n")
    pod.cli("user", "add", "ursula", "--email", "ursula@example.org", input="ursula's password\n")
    k = key(0)
    backup = seal(b"the admin must not see this")
    confirmed_slot(pod, smtp, k, "pat@example.org", backup, sequence=3)
    push(pod, key(1), "quinn@example.org", 1, seal(b"q"))
    assert pod.get("/admin", allow_redirects=False).status_code == 303, "signed-out visitors go to sign-in"
    assert sign_in(pod, "ursula", "ursula's password").get(pod.url + "/admin").status_code == 403
    page = sign_in(pod, "root", "root's password").get(pod.url + "/admin").text
    assert '<td class="confirmed-slots">1</td>' in page and '<td class="unconfirmed-slots">1</td>' in page
    assert "pat@example.org" in page and fingerprint(k)[:16] in page and "quinn@example.org" in page
    assert str(len(backup)) in page
    assert "the admin must not see this" not in page
