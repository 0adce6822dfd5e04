"""TOTP two-factor: enrolment, the login's second step, recovery codes, turning it off."""

from __future__ import annotations

from django.contrib.auth import SESSION_KEY
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import PASSWORD
from tests.tocsin.two_factor_support import app_code, enrol, wrong_code
from tocsin.two_factor import devices


def sign_in(client, login="manager", path="/accounts/login/", next_url=None):
    data = {"username": login, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post(path, data)


def test_enrolment_shows_a_qr_code_and_the_secret_and_confirms_with_a_code(client, crew):
    client.force_login(crew.manager)
    page = client.get("/account/two-factor/setup/")
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    html = page.content.decode()
    device = TOTPDevice.objects.get(user=crew.manager)
    assert not device.confirmed
    assert "<svg" in html and devices.secret_base32(device) in html
    assert "<script" not in html.split("<main", 1)[-1].split("</main>")[0]

    wrong = client.post("/account/two-factor/setup/", {"code": wrong_code(device)})
    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed

    done = client.post("/account/two-factor/setup/", {"code": app_code(device)})
    assert done.status_code == 200 and done["Cache-Control"] == "no-store"
    codes = list(
        StaticToken.objects.filter(device__user=crew.manager).values_list("token", flat=True)
    )
    assert len(codes) == devices.RECOVERY_CODE_COUNT
    assert all(code in done.content.decode() for code in codes)  # shown once, here
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id  # this session verified
    overview = client.get("/account/two-factor/").content.decode()
    assert "On:" in overview and all(code not in overview for code in codes)
    assert client.get("/").status_code == 200  # still signed in


def test_login_asks_for_the_code_and_signs_in_only_when_it_is_right(client, crew):
    device, _ = enrol(crew.manager)
    first = sign_in(client, next_url="/teams/")
    assert first.status_code == 302 and first["Location"] == "/accounts/login/code/"
    assert SESSION_KEY not in client.session  # the password alone does not sign in
    assert client.get("/teams/").status_code == 302  # ...so pages still ask to log in
    assert client.get("/api/v1/teams/").status_code in {401, 403}

    wrong = client.post("/accounts/login/code/", {"code": wrong_code(device)})
    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()
    assert SESSION_KEY not in client.session

    right = client.post("/accounts/login/code/", {"code": app_code(device)})
    assert right.status_code == 302 and right["Location"] == "/teams/"
    assert client.session[SESSION_KEY] == str(crew.manager.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.get("/teams/").status_code == 200


def test_the_code_step_needs_a_password_first(client, crew):
    enrol(crew.manager)
    response = client.post("/accounts/login/code/", {"code": "123456"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert SESSION_KEY not in client.session


def test_five_wrong_codes_send_the_person_back_to_the_password(client, crew):
    device, _ = enrol(crew.manager)
    sign_in(client)
    for _ in range(4):
        assert client.post("/accounts/login/code/", {"code": wrong_code(device)}).status_code == 400
    fifth = client.post("/accounts/login/code/", {"code": wrong_code(device)})
    assert fifth.status_code == 302 and fifth["Location"] == "/accounts/login/"
    late = client.post("/accounts/login/code/", {"code": app_code(device)})
    assert late.status_code == 302 and late["Location"] == "/accounts/login/"
    assert SESSION_KEY not in client.session


def test_people_without_a_device_sign_in_with_the_password_alone(client, crew):
    response = sign_in(client)
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.session[SESSION_KEY] == str(crew.manager.pk)


def test_a_recovery_code_works_once(client, crew):
    _, codes = enrol(crew.manager)
    sign_in(client)
    used = client.post("/accounts/login/code/", {"code": codes[0].upper()})
    assert used.status_code == 302 and client.session[SESSION_KEY] == str(crew.manager.pk)
    assert devices.recovery_codes_left(crew.manager) == len(codes) - 1
    client.post("/accounts/logout/")

    sign_in(client)
    again = client.post("/accounts/login/code/", {"code": codes[0]})
    assert again.status_code == 400 and SESSION_KEY not in client.session


def test_new_recovery_codes_need_a_current_code_and_replace_the_old(client, crew):
    device, old = enrol(crew.manager)
    sign_in(client)
    client.post("/accounts/login/code/", {"code": app_code(device)})
    refused = client.post("/account/two-factor/recovery-codes/", {"code": wrong_code(device)})
    assert refused.status_code == 400
    assert set(StaticToken.objects.values_list("token", flat=True)) == set(old)
    fresh = client.post("/account/two-factor/recovery-codes/", {"code": app_code(device)})
    assert fresh.status_code == 200
    new = set(StaticToken.objects.values_list("token", flat=True))
    assert new and not new & set(old)
    assert all(code in fresh.content.decode() for code in new)


def test_turning_two_factor_off_needs_a_current_code(client, crew):
    device, _ = enrol(crew.manager)
    sign_in(client)
    client.post("/accounts/login/code/", {"code": app_code(device)})
    refused = client.post("/account/two-factor/disable/", {"code": wrong_code(device)})
    assert refused.status_code == 400 and "That code is not right" in refused.content.decode()
    assert TOTPDevice.objects.filter(user=crew.manager).exists()
    empty = client.post("/account/two-factor/disable/", {"code": ""})
    assert empty.status_code == 400

    off = client.post("/account/two-factor/disable/", {"code": app_code(device)})
    assert off.status_code == 302 and off["Location"] == "/account/two-factor/"
    assert not TOTPDevice.objects.filter(user=crew.manager).exists()
    assert not StaticDevice.objects.filter(user=crew.manager).exists()
    assert client.get("/").status_code == 200  # still signed in
    client.post("/accounts/logout/")
    assert sign_in(client)["Location"] == "/"  # the password alone again


def test_one_persons_codes_do_not_open_another_account(client, crew):
    enrol(crew.manager)
    other, other_codes = enrol(crew.responder)
    sign_in(client)
    assert client.post("/accounts/login/code/", {"code": app_code(other)}).status_code == 400
    assert client.post("/accounts/login/code/", {"code": other_codes[0]}).status_code == 400
    assert SESSION_KEY not in client.session


def test_a_session_from_before_enrolment_is_signed_out(client, crew):
    from django.test import Client

    client.force_login(crew.manager)  # an older browser session, never asked for a code
    assert client.get("/").status_code == 200
    enrol(crew.manager)  # ...then the person enrols elsewhere
    session = client.session
    session["tocsin_2fa"]["at"] -= 3600  # the minute-long policy answer has gone stale
    session.save()
    assert client.get("/").status_code == 302
    assert SESSION_KEY not in client.session
    assert Client().get("/").status_code == 302
