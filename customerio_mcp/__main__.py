"""``python -m customerio_mcp`` runs the same command as the ``customerio-mcp`` script."""

from customerio_mcp.cli.main import main

raise SystemExit(main())
