from rnnrepl.cli import main

main()
