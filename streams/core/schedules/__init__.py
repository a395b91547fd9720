"""Cron schedules (pure): the schedule record and its validation (`spec`), its commands and
events (`messages`), the folded state (`state`), decisions (`decide`) and the fire rule
(`fire`). No I/O, no clock: `now` is always an argument."""
