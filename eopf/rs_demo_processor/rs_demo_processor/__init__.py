"""rs-ondemand's demo DPR processor: EOPF processing units that run on staged CADIP sessions."""
