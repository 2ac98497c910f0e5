"""The Veracity CDK app: one stage per environment, built from the typed config in cdk.json."""
