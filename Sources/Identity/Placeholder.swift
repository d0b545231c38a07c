// Placeholder until the Identity module's first file lands.
