from tracebridge.cli import main

main()
