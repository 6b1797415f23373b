"""rs-ondemand's hooks into EOPF runs (installed in the EOPF environment, referenced by generated payloads)."""
