package console

import _ "embed"

// openAPIDoc describes the JSON API; TestOpenAPIMatchesHandlers keeps it
// and the registered routes one-for-one, and checks handler responses
// against it.
//
//go:embed openapi.json
var openAPIDoc []byte
