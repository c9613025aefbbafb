"""The built-in dashboard: server-rendered HTML pages of the agent's API.

``/dashboard`` (overview: activity over time, ASR, recent calls), ``/dashboard/honesty``
(which carriers' codes their early media contradicts), ``/dashboard/calls/{call_id}`` (one
call, second by second) and ``/dashboard/review`` (unknown announcements to label into
the library). Pages: :mod:`.overview`, :mod:`.honesty`, :mod:`.call`, :mod:`.review`; their
frame :mod:`.layout`, SVG :mod:`.charts`; routes and forms :mod:`.routes`.
"""

from agent.api.dashboard.overview import render_dashboard
from agent.api.dashboard.routes import LibraryAccess, register

__all__ = ["LibraryAccess", "register", "render_dashboard"]
