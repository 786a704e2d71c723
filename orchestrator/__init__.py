"""Host side of the AI Energy Score runner: configs, planning, runners, results, reports."""
