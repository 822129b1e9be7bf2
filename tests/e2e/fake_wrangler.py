"""A stand-in for the remote half of `wrangler` (Cloudflare's API), for the
test of scripts/deploy: it keeps the account's state in a JSON file
(FAKE_CF_STATE) and answers the subcommands the script runs in the shapes
wrangler 4 prints them."""

import json
import os
import sys
import uuid

state_path = os.environ["FAKE_CF_STATE"]
try:
    state = json.load(open(state_path))
except FileNotFoundError:
    state = {"d1": [], "kv": [], "secrets": {}, "deployed": 0, "migrations_applied": 0, "calls": []}
args = [a for a in sys.argv[1:]]
if "-c" in args:  # the config file: the script must always pass it
    i = args.index("-c")
    config = args.pop(i + 1)
    args.pop(i)
else:
    sys.exit("fake wrangler: no -c CONFIG")
state["calls"].append(args)
status = 0
match args:
    case ["d1", "list", "--json"]:
        print(json.dumps([{"uuid": d["uuid"], "name": d["name"], "version": "production"} for d in state["d1"]]))
    case ["d1", "create", name]:
        state["d1"].append({"uuid": str(uuid.uuid4()), "name": name})
        print(f"Created your new D1 database.\n[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"{name}\"")
    case ["kv", "namespace", "list"]:
        print(json.dumps(state["kv"]))
    case ["kv", "namespace", "create", title]:
        state["kv"].append({"id": uuid.uuid4().hex, "title": title})
        print(f'Creating namespace with title "{title}"')
    case ["d1", "migrations", "apply", "DB", "--remote"]:
        assert "database_id = \"00000000" not in open(config).read(), "migrations before the database id is in place"
        state["migrations_applied"] += 1
        print("Migrations to be applied: ...")
    case ["secret", "list", "--format", "json"]:
        if not state["deployed"]:
            print("This Worker does not exist on your account.", file=sys.stderr)
            status = 1
        else:
            print(json.dumps([{"name": n, "type": "secret_text"} for n in sorted(state["secrets"])]))
    case ["secret", "bulk", path]:
        new = json.load(open(path))
        state["secrets"].update(new)
        print(f"Finished processing secrets file: {len(new)} secrets successfully uploaded")
    case ["deploy"]:
        state["deployed"] += 1
        print(f"Uploaded otp-edge (1.00 sec)\nDeployed otp-edge triggers (0.50 sec)\n  {os.environ['FAKE_URL']}\n"
              f"  schedule: */10 * * * *\nCurrent Version ID: {uuid.uuid4()}")
    case _:
        print(f"fake wrangler: unexpected {args}", file=sys.stderr)
        status = 2
json.dump(state, open(state_path, "w"))
sys.exit(status)
