"""Event-driven ingestion: what happens when an object lands, on AWS and locally.

``delivery``  the ingest service: check a delivered batch, record it, start its run or
              quarantine it (plain Python, called by the Lambda handler)
``ledger``    the ingest ledger in DynamoDB: each batch and its state
``runs``      starting a pipeline run in Step Functions, once per batch
``events``    the EventBridge pattern for landing uploads, shared by the stack and the
              local flow
``local``     the same flow on one machine: an in-process moto server, an SQS poller
              that hands messages to the Lambda handler, and a local orchestrator
"""
