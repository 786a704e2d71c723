"""Print the command the README marks ``<!-- ci: NAME -->``: the fenced block right after it.

CI runs the README's commands as written, so that the two cannot drift apart.
    python3 .ci/readme_command.py NAME
"""

import re
import sys
from pathlib import Path

readme = Path(__file__).resolve().parent.parent / "README.md"
name = sys.argv[1]
pattern = rf"<!-- ci: {re.escape(name)} -->\n```bash\n(.*?)```"
found = re.findall(pattern, readme.read_text(), flags=re.DOTALL)
if len(found) != 1:
    sys.exit(f"{readme}: {len(found)} blocks marked 'ci: {name}', need exactly one")
command = found[0].strip()
if "\n" in command:  # run by eval, a block of several lines would report only its last
    sys.exit(f"{readme}: the block marked 'ci: {name}' has several lines; CI needs one")
print(command)
