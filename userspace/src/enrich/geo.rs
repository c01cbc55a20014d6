//! IP → country (filled in by issue 4 work).
