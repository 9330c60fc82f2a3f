"""The lower bounds of pyproject.toml as exact pins (`pip install -r`): `./dev test-lowest` installs them."""
import re
import tomllib

with open("pyproject.toml", "rb") as f:
    doc = tomllib.load(f)
deps = doc["project"]["dependencies"] + doc["project"]["optional-dependencies"]["dev"]
out = []
for d in deps:
    name, _, marker = d.partition(";")
    m = re.match(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][^,\s]*)", name)
    if m:
        out.append(f"{m.group(1)}=={m.group(2)}" + (f";{marker}" if marker else ""))
    else:
        out.append(d)
print("\n".join(line for line in out if not line.startswith(("ruff", "mypy", "types-", "playwright", "rocksdict"))))
