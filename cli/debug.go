package cli

import "os"

func debugEnabled() bool { return os.Getenv("PQVC_DEBUG") != "" }
