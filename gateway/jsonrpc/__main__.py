from gateway.jsonrpc.stdio import main

raise SystemExit(main())
