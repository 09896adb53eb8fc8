"""The callback of a MinerU task (``POST /v1/tasks`` with ``callback``): when its last file's job ends,
its final payload (what ``GET /v1/tasks/{id}`` answers) is POSTed to the caller's URL, signed with
its secret (``callbacks``). The task's id and status travel in headers too, as in MinerU's archives."""

from __future__ import annotations

import json
import logging

from ...core.settings import Settings
from ...service.task_groups import GroupView, Notifier
from . import mineru_v4 as v4
from .callbacks import CallbackSender

log = logging.getLogger("docfn.jobs")


def task_notifier(settings: Settings) -> Notifier:
    sender = CallbackSender(settings)

    def notify(view: GroupView) -> None:
        callback = view.record.callback
        if callback is None:
            return
        body = json.dumps(v4.task_payload(view), ensure_ascii=False).encode()
        headers = {"X-MinerU-Task-Id": view.record.task_id, "X-MinerU-Task-Status": view.state}
        delivered = sender.send(callback.url, callback.secret, body, headers)
        log.info(
            "task callback %s",
            "delivered" if delivered else "not delivered",
            extra={"fields": {"task_id": view.record.task_id, "status": view.state, "delivered": delivered}},
        )

    return notify
