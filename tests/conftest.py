"""The test kits are pytest plugins (the way quix-streams registers its fixtures): real services,
worker groups, and the fault-test helpers. Nothing here ever skips a test."""

pytest_plugins = ["tests.kits.services", "tests.kits.stream_fixtures"]
