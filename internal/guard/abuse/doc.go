// Package abuse provides LLMjacking abuse signals for the guard gateway:
// per-key detectors that notice a stolen API key being used in ways its
// owner never did. Each signal can be set to log, alert (a JSON webhook) or
// block.
//
// Signals:
//
//   - rate_jump: per key, exponentially weighted baselines of tokens and
//     requests per minute (bias-corrected EWMA over whole minutes, idle
//     minutes counting as zero). Once the key is warm — at least
//     WarmupMinutes since its first request and WarmupRequests requests —
//     the current minute is flagged when it exceeds Factor times the
//     baseline and a small absolute floor (MinTokensPerMinute,
//     MinRequestsPerMinute). Tokens come from After (the billed usage);
//     requests are counted in Before. A flagged minute is folded into the
//     baseline capped at Factor×baseline, so a sustained new level becomes
//     the baseline in roughly HalfLife×3.
//   - new_network: per key, the client networks seen (IPv4 /24, IPv6 /48;
//     IPv4-mapped addresses count as IPv4) in an LRU of MaxNetworks. The
//     key's first network is learnt silently; every later request from a
//     network not in the set is flagged once, and the network is then
//     remembered. A network evicted from the LRU is flagged again when it
//     comes back.
//   - prompt_abuse: the request's prompt text is classified with
//     internal/classify; configured categories (by default fraud_phishing,
//     malware_intrusion, harassment_hate, disinformation,
//     personal_data_harvesting, csam) are flagged.
//   - output_gibberish (output_watch, off by default): the gateway scores
//     each streamed answer with package gibberish and calls Output when it
//     turns to gibberish; the signal carries the (redacted) end of the
//     preceding prompt, where a backdoor trigger would sit. Log or alert
//     only.
//   - bulk_spam: a 64-bit simhash (character 4-gram shingles of normalised
//     text, so it works without word boundaries, for Japanese too) of each
//     prompt of at least MinChars characters is kept per key in a ring of
//     MaxPrompts; a prompt with at least Threshold-1 earlier prompts within
//     MaxDistance bits in the last Window is flagged.
//
// Prompt text and cost: only the last user message (Ollama and OpenAI
// "messages", content as a string or as text parts) or the "prompt" field,
// plus the first system message when there is one (at most a quarter of
// the budget), is examined. Text longer than MaxPromptBytes (8 KiB by
// default) is cut to its head and tail halves, so a long prompt costs the
// classifier at most a few milliseconds; harmful text hidden in the middle
// of a very long prompt is not seen. Bodies larger than MaxBodyBytes are not
// examined at all.
//
// Prompt analysis (extraction, classification, simhash) is cached by the
// hash of the request body (a bounded map), so a repeated prompt is
// classified once. With Options.Background (the gateway's setting) it also
// leaves the request path: unless prompt_abuse or bulk_spam is set to
// block, Before queues the prompt for one background worker and returns;
// their signals are logged and alerted from the worker, and a prompt that
// finds the bounded queue full is skipped and counted.
//
// Memory is bounded: at most MaxKeys key states (LRU, spread over shards),
// each with a fixed-size rate state, at most MaxNetworks networks and at
// most MaxPrompts prompt hashes. A key whose state is evicted starts again
// from nothing (its next network is learnt silently, its baseline warms up
// again).
//
// Notifications (log lines and webhook alerts) are rate-limited per key and
// signal kind to one per Cooldown; the next one reports how many were
// suppressed. Webhook alerts are POSTed asynchronously from a bounded queue
// with a timeout; when the queue is full the alert is logged and dropped,
// never blocking the request path. Verdicts are not rate-limited: a Block
// rule blocks every matching request.
//
// Results are signals for human review; every one of them can be evaded
// and can misfire on legitimate use.
package abuse
