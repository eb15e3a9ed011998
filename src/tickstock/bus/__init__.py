"""Moving contracts through Redis: durable streams with consumer groups (ack after the effect,
claim from dead consumers, bounded retries, dead letters), the capped event stream with its
pub/sub mirror, the job read model and heartbeats. No business logic.

    connection   clients with retry, the back-off of every loop
    streams      StreamPublisher, Consumer (at-least-once, dead letters)
    deadletter   the dead-letter stream
    events       EventPublisher (best effort), EventReader (catch up, follow)
    readmodel    tickstock:job:{id} hashes
    heartbeat    HeartbeatThread, read_heartbeats
    submit       submit_job, send_command
    inspection   queued entries, stream and group sizes (for operators)
    metrics      Prometheus counters and gauges
"""
