from tradelog.cli import main

main()
