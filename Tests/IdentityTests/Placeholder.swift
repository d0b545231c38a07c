// Placeholder until the first Identity test lands.
