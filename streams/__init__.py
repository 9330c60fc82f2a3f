"""tierstream's imperative shell: Faust app, topics, tables, agents, Redis, web, CLI."""
