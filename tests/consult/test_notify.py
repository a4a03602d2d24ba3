"""Callbacks' limits, the turn-near e-mail and the link back to the seat."""

import re
import uuid
from datetime import timedelta

import pytest
from django.core import mail, signing
from django.utils import timezone

from consult import errors, services
from consult.models import Callback, Ticket
from consult.services import privacy
from consult.services.notify import RETURN_LINK_SALT
from tests.factories import join, make_consultant


def test_callbacks_from_one_address_are_capped(consultant, settings):
    settings.CONSULT_MAX_WAITING_PER_ADDRESS = 2
    ask = dict(
        consultant_slug="ada", caller_name="Cal", contact="cal@example.com", reason=""
    )
    for _ in range(2):
        services.callback_request(**ask, address="203.0.113.7")
    with pytest.raises(errors.TooManyFromAddress):
        services.callback_request(**ask, address="203.0.113.7")
    services.callback_request(**ask, address="203.0.113.8")
    assert Callback.objects.count() == 3


def test_a_consultants_open_callbacks_are_capped_by_their_queue_size(db):
    make_consultant("tiny", max_queue=1)
    ask = dict(consultant_slug="tiny", caller_name="Cal", contact="555-0100", reason="")
    services.callback_request(**ask)
    with pytest.raises(errors.QueueFull):
        services.callback_request(**ask)


def accept_next(consultant):
    services.desk_opened(consultant_id=consultant.id, channel="desk", process="p")
    services.ticket_accept(consultant_id=consultant.id, channel="desk", process="p")


def test_the_turn_near_email_is_sent_once_when_the_place_is_reached(
    consultant, django_capture_on_commit_callbacks
):
    join(consultant, "c1", name="First")
    join(consultant, "c2", name="Second")
    # The cache outlives a test: each run mails an address of its own.
    address = f"second-{uuid.uuid4().hex}@example.com"
    services.ticket_notify(channel="c2", email=address, place=1)

    # Mailed once the mark is committed (the test's transaction never is).
    with django_capture_on_commit_callbacks(execute=True):
        services.sweep()
    assert mail.outbox == []  # still number 2

    accept_next(consultant)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            services.sweep()

    [message] = mail.outbox
    assert message.to == [address]
    # Nothing the caller typed goes into a mail to an unconfirmed address.
    assert "Second" not in message.body
    assert message.subject == "You are next in line for Ada"
    link = re.search(r"http\S+/call/ada/back/\S+/", message.body)
    assert link
    with pytest.raises(errors.AlreadyNotified):
        services.ticket_notify(channel="c2", email="other@example.com", place=1)


def test_no_email_after_the_ticket_ended_and_the_address_is_erased(
    consultant, django_capture_on_commit_callbacks
):
    ticket, _ = join(consultant, "c1")
    services.ticket_notify(channel="c1", email="gone@example.com", place=2)
    services.ticket_cancel(channel="c1")
    with django_capture_on_commit_callbacks(execute=True):
        services.sweep()
    assert mail.outbox == []
    ticket.refresh_from_db()
    assert ticket.notify_email == ""


def test_the_return_link_gives_the_seat_back_with_a_fresh_token(consultant, client):
    ticket, queued = join(consultant, "c1")
    signed = signing.dumps(str(ticket.pk), salt=RETURN_LINK_SALT)
    url = f"/call/ada/back/{signed}/"

    # Following the link (a mail scanner does) takes nothing.
    page = client.get(url)
    assert page.status_code == 200
    assert b'data-testid="return-to-seat"' in page.content
    ticket.refresh_from_db()
    assert ticket.token_hash == services.token_hash(queued["token"])

    back = client.post(url)
    assert back.status_code == 302 and back["Location"] == "/call/ada/"
    # Once: whoever else has the mail cannot take the seat with it later.
    assert client.post(url).status_code == 410
    call_page = client.get("/call/ada/")
    token = re.search(rb'data-resume-token="([^"]+)"', call_page.content).group(1)
    assert "no-store" in call_page["Cache-Control"]
    resumed = services.ticket_resume(token=token.decode(), channel="c2", process="p")
    assert resumed.value.kind == "queued"
    with pytest.raises(errors.BadToken):
        services.ticket_resume(token=queued["token"], channel="c3", process="p")
    # Once: the next page load has no token in it.
    assert b"data-resume-token" not in client.get("/call/ada/").content


@pytest.mark.parametrize("link", ["forged", "ended"])
def test_a_bad_or_stale_link_is_gone(consultant, client, link):
    ticket, _ = join(consultant, "c1")
    signed = signing.dumps(str(ticket.pk), salt=RETURN_LINK_SALT)
    if link == "forged":
        signed = signed[:-2] + ("AA" if not signed.endswith("AA") else "BB")
    else:
        services.ticket_cancel(channel="c1")
    for response in (
        client.get(f"/call/ada/back/{signed}/"),
        client.post(f"/call/ada/back/{signed}/"),
    ):
        assert response.status_code == 410
    expected_waiting = 1 if link == "forged" else 0
    assert Ticket.objects.filter(state="waiting").count() == expected_waiting


def test_an_admin_marks_callbacks_handled_through_the_service(consultant, admin_client):
    services.callback_request(
        consultant_slug="ada", caller_name="Cal", contact="555-0100", reason=""
    )
    callback = Callback.objects.get()
    listing = admin_client.get("/admin/consult/callback/")
    assert b"555-0100" in listing.content
    response = admin_client.post(
        "/admin/consult/callback/",
        {"action": "callbacks_handled", "_selected_action": [callback.pk]},
    )
    assert response.status_code == 302
    assert not Callback.objects.exists()


def test_an_address_gets_one_email_a_day_however_many_tickets_name_it(
    consultant, django_capture_on_commit_callbacks
):
    victim = f"Victim-{uuid.uuid4().hex}@Example.com"
    for channel in ("c1", "c2"):
        join(consultant, channel)
        services.ticket_notify(channel=channel, email=victim, place=2)
    with django_capture_on_commit_callbacks(execute=True):
        services.sweep()
    assert len(mail.outbox) == 1


def test_callbacks_nobody_handled_are_purged_on_schedule(consultant, settings):
    settings.CONSULT_CALLBACK_DAYS = 14
    ask = dict(consultant_slug="ada", caller_name="Cal", contact="555-0100", reason="")
    services.callback_request(**ask)
    services.callback_request(**ask)
    Callback.objects.filter(pk=Callback.objects.first().pk).update(
        created_at=timezone.now() - timedelta(days=15)
    )
    assert privacy.history_purge().callbacks_deleted == 1
    assert Callback.objects.count() == 1


def test_a_transfer_note_goes_with_its_unused_right_to_move(consultant, settings):
    settings.CONSULT_MOVE_SECONDS = 600
    ticket, _ = join(consultant, "c1")
    services.ticket_refuse(
        consultant_id=consultant.id, ticket_id=str(ticket.pk), reason=""
    )
    Ticket.objects.filter(pk=ticket.pk).update(
        transfer_note="private note", ended_at=timezone.now() - timedelta(seconds=601)
    )
    privacy.history_purge()
    ticket.refresh_from_db()
    assert (ticket.move_hash, ticket.transfer_note) == ("", "")
