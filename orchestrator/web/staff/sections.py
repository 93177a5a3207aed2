"""The workspace's sections that have pages: the conference navigation links only to these.

An area module adds its key here when its pages land (staff/_base.html lists the sections).
"""

SECTIONS_BUILT = frozenset(
    {"overview", "settings", "people", "checkin", "forums", "mail", "attendance", "team"}
)
