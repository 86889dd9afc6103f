from rnnrepl.cli.main import main

main()
