"""``python -m desktop`` starts FeedPool as the packaged app does (see :mod:`desktop.entry`)."""

from desktop.entry import main

raise SystemExit(main())
