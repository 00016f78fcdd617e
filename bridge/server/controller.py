"""Controller actions: one-button shortcuts on the job service, fired by MIDI triggers.

A pad press carries no request, so each action works from the project's history: run the last
request again, another take of the last range, another take of the last request, or cancel what
is running. Actions run on the intake thread (they read the request's files); the outcome is
logged, and an error is also answered when the sender has a reply address.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bridge.server.intake import Intake
from bridge.server.replies import Origin, Replier
from bridge.server.service import JobService, Outcome

log = logging.getLogger(__name__)

#: The actions a controller can fire.
ACTIONS = ("generate", "regenerate", "variation", "cancel")

_NO_REQUEST = "no request has been sent to this project yet; generate once from the DAW"


class ControllerActions:
    """The actions behind controller buttons, each one call on the :class:`JobService`.

    Args:
        service: the job service every transport uses.
        intake: runs :meth:`trigger`'s work off the caller's thread.
        replier: answers errors to a sender that has a reply address.
    """

    def __init__(self, service: JobService, intake: Intake, replier: Replier) -> None:
        self._service = service
        self._intake = intake
        self._replier = replier
        self._handlers: dict[str, Callable[[Origin], Outcome]] = {
            "generate": self.rerun_last, "regenerate": self.regenerate_last_range,
            "variation": self.variation_last, "cancel": self.cancel_current,
        }

    def rerun_last(self, origin: Origin) -> Outcome:
        """Queue the most recent request again as it is (its files are read afresh)."""
        job = self._service.latest_job()
        if job is None:
            return Outcome(False, "", "no_request", _NO_REQUEST)
        return self._service.rerun(job, origin)

    def regenerate_last_range(self, origin: Origin) -> Outcome:
        """Queue the most recent range regeneration again with a new seed (another take)."""
        job = self._service.latest_job(with_range=True)
        if job is None:
            return Outcome(False, "", "no_request",
                           "no bar range has been regenerated yet; select a range in the DAW first")
        return self._service.variation(job.job_id, origin)

    def variation_last(self, origin: Origin) -> Outcome:
        """Queue the most recent request again with a new seed (another take)."""
        job = self._service.latest_job()
        if job is None:
            return Outcome(False, "", "no_request", _NO_REQUEST)
        return self._service.variation(job.job_id, origin)

    def cancel_current(self, origin: Origin) -> Outcome:
        """Cancel the running job, or else the newest queued one."""
        job_id = self._service.current_job_id()
        if job_id is None:
            return Outcome(False, "", "no_job", "nothing is queued or running")
        return self._service.cancel(job_id, origin)

    def trigger(self, action: str, origin: Origin) -> None:
        """Run ``action`` on the intake thread; the outcome is logged (and an error replied if possible).

        Raises:
            ValueError: ``action`` is not one of :data:`ACTIONS`.
        """
        handler = self._handlers.get(action)
        if handler is None:
            raise ValueError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")

        def run() -> None:
            outcome = handler(origin)
            if outcome.ok:
                log.info("%s action from %s: job %s %s", action, origin.source, outcome.job_id, outcome.code or "queued")
            else:
                self._replier.error(origin, outcome.job_id, outcome.code, outcome.message)

        self._intake.submit(run, origin)
