"""Demo LLM agent for Rollgate: simulated traces, the SLA metric contract, behaviour per version."""
