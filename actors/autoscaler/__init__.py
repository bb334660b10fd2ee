"""The autoscaler actor: HorizontalPodAutoscalers evaluated against pod metrics and NATS backlogs."""
