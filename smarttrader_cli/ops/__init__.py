"""Operations: locks, the run ledger, resources, doctor, cleanup."""
