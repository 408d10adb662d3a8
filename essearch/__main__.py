from essearch.cli import main

main()
