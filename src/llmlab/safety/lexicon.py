"""The guard's weighted lexicons: harmful topics per category, the signals that make a mention an *ask*
(procedural verbs, request framing, evasion), the contexts that make it benign, jailbreak framing, and the
marks of instructions hidden in untrusted content.

Written from general knowledge of each harm area (the kinds of weapons, drugs, malware, frauds, violent acts
and self-harm asks that moderation policies name), not from the red-team suite's sentences: a concept is
listed here because it belongs to the category, and its weight says how unambiguous a mention is (a "pipe
bomb" is 1.0, "gun" is 0.4). ``guard.py`` combines them; ``tests/safety`` check the combination on the
held-out half of the red-team suite, whose topics and phrasings this file never saw (see ``redteam.py``).

Pattern syntax: each entry is a regular-expression fragment matched against lower-cased text with letter
boundaries on both sides; a literal space matches any run of spaces or hyphens ("pipe bomb", "pipe-bomb").
"""

from __future__ import annotations

import functools
import re

CATEGORIES = ("weapons", "malware", "drugs", "violence", "self_harm", "fraud")

# (weight, patterns) per category: the topic of a harmful ask.
TOPICS: dict[str, list[tuple[float, list[str]]]] = {
    "weapons": [
        (0.9, [r"pipe bombs?", r"nail bombs?", r"car bombs?", r"dirty bombs?", r"pressure cooker bombs?",
               r"suicide vests?", r"explosive vests?", r"improvised explosive devices?", r"ieds?", r"tatp",
               r"acetone peroxide", r"petn", r"rdx", r"semtex", r"c ?4 explosives?", r"nitroglycerine?",
               r"blasting caps?", r"detonators?", r"molotov(?: cocktails?)?", r"napalm", r"thermite",
               r"nerve (?:agents?|gas)", r"sarin", r"tabun", r"soman", r"vx (?:gas|nerve agent)", r"novichok",
               r"mustard gas", r"phosgene", r"chlorine gas", r"ricin", r"abrin", r"anthrax", r"botulinum toxin",
               r"bio ?weapons?", r"biological weapons?", r"chemical weapons?", r"weaponi[sz]e\w*",
               r"nuclear (?:bombs?|weapons?|devices?)", r"atomic bombs?", r"enrich\w* uranium",
               r"weapons? grade (?:uranium|plutonium)", r"ghost guns?", r"untraceable (?:guns?|firearms?|weapons?)",
               r"3d print\w* (?:guns?|firearms?|rifles?|pistols?)", r"auto sears?", r"bump stocks?",
               r"full(?:y)? auto(?:matic)? conversion", r"convert\w* (?:\S+ ){0,3}(?:to|into) (?:full(?:y)? )?auto\w*",
               r"zip guns?", r"pipe guns?", r"print\w* (?:\S+ ){0,2}(?:glocks?|guns?|firearms?|pistols?|rifles?|receivers?)", r"booby ?traps?", r"trip ?wire (?:bombs?|guns?|traps?)", r"poison gas", r"(?:unregistered|unseriali[sz]ed|unmarked|untraceable) "
               r"(?:\S+ )?(?:guns?|firearms?|rifles?|pistols?|receivers?|weapons?)", r"assault (?:rifles?|weapons?)",
               r"explosive drones?", r"white phosphorus", r"devices? that (?:\S+ ){0,2}(?:explodes?|detonates?|blows? up)",
               r"(?:explodes?|detonates?|blows? up) when", r"(?:homemade|home ?made|improvised) (?:explosives?|bombs?|grenades?|guns?|firearms?)", r"toxic gas", r"grenades?", r"flamethrowers?", r"letter bombs?",
               r"fertili[sz]er bombs?", r"ammonium nitrate bombs?", r"black powder bombs?", r"smoke bombs?"]),
        (0.8, [r"explosives?", r"explosive devices?", r"incendiary (?:devices?|bombs?)", r"bombs?", r"silencers?",
               r"suppressors?", r"gunpowder", r"mass casualt\w+", r"dangerous pathogens?", r"radiological"]),
        (0.5, [r"firearms?", r"guns?", r"rifles?", r"pistols?", r"weapons?", r"ammunition", r"ammo", r"shrapnel",
               r"toxins?", r"blow up", r"shotguns?", r"glocks?", r"ar ?15s?", r"ak ?47s?"]),
    ],
    "malware": [
        (0.9, [r"ransomware", r"keyloggers?", r"key ?loggers?", r"rootkits?", r"botnets?", r"spyware", r"stalkerware",
               r"trojans?", r"remote access trojans?", r"computer virus(?:es)?", r"malware", r"crypt(?:o)?jack\w*",
               r"info ?stealers?", r"password stealers?", r"credential stuff\w*", r"zero days?", r"0 ?days?",
               r"ddos\w*", r"denial of service", r"phishing (?:kits?|pages?|sites?|websites?)",
               r"self ?replicating (?:code|program|script)", r"polymorphic (?:code|virus|malware)",
               r"brute ?forc\w* (?:\S+ ){0,3}(?:passwords?|logins?|accounts?|wi ?fi|networks?|routers?|pins?|"
               r"servers?|ssh|zip files?)",
               r"(?:get into|access|break into|log ?into|spy on|read|hack|steal|clone|take over|crack|unlock|track|"
               r"monitor|intercept|copy|empty|drain|hijack|snoop on|look through)\w* (?:\S+ ){0,2}(?:\S+'s?|someone'?s|"
               r"someone else'?s|other people'?s|their|his|her|a stranger'?s) (?:\S+ ){0,2}(?:accounts?|wi ?fi|phones?|"
               r"texts?|text messages|messages|e ?mails?|inbox|wallets?|computers?|laptops?|key ?fobs?|passwords?|"
               r"identit\w+|locations?|bank\w*|credit cards?|social media|instagram|facebook|snapchat|whatsapp|dms|"
               r"cameras?|webcams?|icloud|google|files|photos|chats?)",
               r"hack\w* (?:into )?(?:\S+ ){0,4}(?:accounts?|e ?mails?|inbox|phones?|wi ?fi|networks?|computers?|"
               r"servers?|websites?|databases?|cameras?|webcams?|instagram|facebook|snapchat|twitter|icloud|gmail|"
               r"bank\w*|systems?|routers?|laptops?|devices?|grid)",
               r"break into (?:\S+ ){0,3}(?:accounts?|e ?mails?|inbox|phones?|networks?|computers?|servers?|"
               r"websites?|databases?|wi ?fi)",
               r"crack\w* (?:\S+ ){0,3}(?:passwords?|wi ?fi|wpa2?|accounts?|licen[cs]e keys?)",
               r"steal\w* (?:\S+ ){0,3}(?:passwords?|credentials?|cookies|session tokens?|logins?|api keys?|"
               r"private keys?|crypto wallets?)",
               r"bypass\w* (?:\S+ ){0,3}(?:2fa|two factor|authentication|antivirus|anti ?virus|edr|firewalls?|"
               r"logins?|security)",
               r"exploit\w* (?:\S+ ){0,3}(?:vulnerabilit\w+|cves?|servers?|systems?)",
               r"sql injection attacks?", r"reverse shells?", r"(?:command and control|c2) servers?",
               r"undetectable (?:by |to )?(?:\S+ ){0,2}(?:antivirus|anti ?virus|edr)", r"worms? that spreads?",
               r"exfiltrat\w+ (?:\S+ ){0,3}(?:data|files|passwords|credentials)",
               r"encrypt\w* (?:\S+ ){0,5}(?:files?|drives?|disks?|computers?) (?:\S+ ){0,8}(?:ransom|bitcoin|pay(?:ment)?|"
               r"monero|crypto)", r"harvest\w* (?:\S+ ){0,3}(?:passwords?|credentials?|logins?|e ?mails?|data|"
               r"card numbers?)", r"fake (?:\S+ ){0,2}(?:login|sign ?in|log ?in|bank(?:ing)?) (?:page|site|website|form|"
               r"portal|screen)s?", r"(?:take|bring|knock|shut)\w* (?:\S+ ){0,4}(?:websites?|servers?|sites?|networks?|"
               r"services?) (?:down|offline)", r"flood\w* (?:\S+ ){0,3}with (?:\S+ )?(?:traffic|requests|packets)",
               r"until (?:it|they|the \S+) (?:goes|go|crash\w*|falls?) (?:down|offline|over)",
               r"take over (?:\S+ ){0,2}(?:webcams?|cameras?|accounts?|computers?|phones?)",
               r"(?:lock|encrypt)\w* (?:\S+ ){0,3}files? (?:\S+ ){0,4}(?:demand|ask|pay|ransom)", r"dump\w* (?:\S+ ){0,2}"
               r"(?:password|credential|hash|database|user)\w*", r"password hashes", r"(?:sneak|slip|plant|hide|insert)\w* "
               r"(?:\S+ ){0,2}(?:backdoors?|malware|trojans?|spyware|keyloggers?)", r"(?:steal|grab|exfiltrate)\w* "
               r"(?:\S+ ){0,3}tokens?", r"(?:log|record|capture)\w* (?:\S+ ){0,3}keystrokes"]),
        (0.6, [r"virus(?:es)?", r"worms?", r"exploits?", r"backdoors?", r"payloads?", r"shellcode", r"hacking",
               r"hack\w*", r"sql injection", r"xss", r"cross site scripting", r"buffer overflows?", r"phishing",
               r"malicious (?:code|scripts?|macros?|software)"]),
    ],
    "drugs": [
        (0.9, [r"methamphetamines?", r"crystal meth", r"meth", r"fentanyl", r"carfentanil", r"heroin",
               r"cocaine", r"crack cocaine", r"freebase", r"lsd", r"mdma", r"ecstasy pills?", r"ghb",
               r"date rape drugs?", r"roofies", r"rohypnol", r"pcp", r"angel dust", r"dmt", r"bath salts",
               r"mephedrone", r"ketamine", r"opium", r"synthetic cannabinoids?", r"spice drug",
               r"illegal drugs?", r"illicit drugs?", r"controlled substances?", r"narcotics",
               r"drug (?:lab|precursors?)", r"precursor chemicals?", r"pseudoephedrine", r"p2p method",
               r"spike\w* (?:\S+ ){0,3}drinks?", r"lace\w* (?:\S+ ){0,3}(?:drinks?|food|joints?)",
               r"smuggl\w* (?:\S+ ){0,3}(?:drugs?|cocaine|heroin|pills)", r"sell\w* (?:\S+ ){0,2}drugs?",
               r"drug (?:dealing|trafficking|smuggling)", r"(?:cannabis|marijuana|weed|drugs?|cocaine|heroin|meth|pills|"
               r"opium|ketamine|mdma) (?:smuggling|trafficking|dealing|running)", r"cough syrup (?:\S+ ){0,5}(?:stronger|"
               r"high|sell|extract\w*)", r"deal(?:ing)? drugs?"]),
        (0.6, [r"opioids?", r"oxycodone", r"oxycontin", r"morphine", r"amphetamines?", r"psilocybin",
               r"magic mushrooms?", r"drugs?", r"smuggl\w*", r"codeine", r"hydrocodone", r"tramadol",
               r"benzos?", r"valium", r"cannabis", r"marijuana", r"get high(?! (?:marks|grades|scores|ratings|quality))", r"xanax", r"adderall"]),
    ],
    "violence": [
        (0.9, [r"(?:kill|murder|assassinat|strangl|stab|shoot|shot|poison|drown|suffocat|smother|behead|"
               r"tortur|kidnap|abduct|maim|disfigur|dismember|execut|lynch|mutilat|beat|hurt|harm|injur|attack|"
               r"assault|punch|choke|bludgeon|bash|run over|burn|push|throw acid at|acid attack)\w* (?:\S+ ){0,3}?"
               r"(?:someone|somebody|a person|people|persons|anyone|everyone|a human|humans|him|her|them|"
               r"my (?:\S+ )?(?:wife|husband|spouse|partner|girlfriend|boyfriend|ex|mother|mom|father|dad|brother|"
               r"sister|son|daughter|child|kid|baby|neighbou?r|boss|manager|coworker|co ?worker|colleague|teacher|"
               r"classmate|roommate|landlord|friend|family|parents|grandmother|grandfather|uncle|aunt|cousin|"
               r"stepfather|stepmother|in ?laws?)|"
               r"(?:a|the|this|that|some) (?:\S+ )?(?:child|kid|baby|man|woman|girl|boy|toddler|student|teacher|cop|"
               r"police ?(?:officer|man)|officer|judge|politician|senator|president|mayor|journalist|witness|"
               r"neighbou?r|stranger|homeless (?:man|person)|guard|doctor|nurse|priest|crowd|family|couple|cyclist|"
               r"pedestrian|jogger|driver|passenger|prisoner|hostage|inmate|worker|employee|customer|voter|"
               r"protester|tourist|patient|victim|target|rival|enemy|boss|coworker|classmate|person|human|"
               r"individual|guy|lady|old man|old woman|elderly (?:man|woman|person))s?|"
               r"the (?:president|prime minister|king|queen|pope|governor|ceo)|"
               r"(?:rich |little |young |small |\S+'s )?(?:kid|child|baby|toddler|daughter|son)s?|"
               r"(?:a|the|my|our|his|her|their|neighbou?r'?s|someone'?s) (?:\S+ )?(?:dog|cat|horse|pet|puppy|kitten)s?|"
               r"(?:children|kids|babies|women|men|students|teachers|cops|police officers|worshippers|protesters|"
               r"immigrants|refugees|jews|muslims|christians|gays?|black people|asians|a crowd|crowds))",
               r"get away with (?:murder|killing)", r"for (?:a )?ransom",
               r"(?:set\w* fire to|set\w* on fire|burn\w* down|torch\w*|firebomb\w*|strangl\w*|suffocat\w*|"
               r"drug\w*|sedat\w*|abus\w*|harass\w*|threaten\w*|doxx?\w*|frame|sabotag\w*|vandali[sz]\w*|"
               r"ambush\w*|rape\w*|molest\w*|traffick\w*) (?:\S+ ){0,2}(?:someone|somebody|anyone|everyone|people|a person|him|her|them|(?:my|his|her|their|our|your) (?:\S+ )?\S+|\S+'s \S+|(?:an?|the|this|that) (?:\S+ ){0,2}(?:man|woman|guy|lady|kid|child|boy|girl|person|people|officer|cop|teacher|student|worker|customer|tourist|victim|witness|neighbou?r|stranger|family|crowd|shop|store|bank|house|home|car|school|church|mosque|synagogue|temple|building|office|atm|server|network|website|account|plane|train|bus|bridge|company|business|hospital|pharmacy|jewell?ery \S+)s?)", r"dispos\w* of (?:a |the )?(?:dead )?bod(?:y|ies)",
               r"hid\w* (?:a |the )?(?:dead )?bod(?:y|ies)", r"mass (?:shooting|murder|killing|stabbing)s?",
               r"school shootings?", r"shoot(?:ing)? up (?:a |the |my |our |his |her |their )?(?:\S+ )?(?:school|church|mosque|"
               r"synagogue|temple|mall|office|workplace|class|classroom|concert|club|party|campus|hospital|store)",
               r"blow(?:ing)? up (?:a |the |my |our |his |her |their )?(?:\S+ )?(?:school|church|mosque|synagogue|temple|"
               r"mall|office|building|bridge|plane|train|bus|stadium|embassy|car|house|crowd)", r"hire (?:a )?(?:hit ?man|assassin|contract killer)", r"hit ?man",
               r"contract killers?", r"look like an accident", r"untraceable poisons?", r"undetectable poisons?",
               r"pois\w* (?:\S+ ){0,2}(?:food|drink|coffee|tea|water supply|reservoir)",
               r"stalk\w* (?:\S+ ){0,2}(?:my|her|him|someone|an? |the )", r"chloroform\w*",
               r"knock\w* (?:\S+ ){0,2}(?:someone|somebody|him|her|them|a person|people|my \S+) (?:out|unconscious)",
               r"sedat\w* (?:someone|somebody|him|her|them|a person|my \S+) (?:without|secretly)", r"swatting", r"vehicle ramming",
               r"terror(?:ist)? attacks?", r"massacre", r"make (?:\S+ ){1,3}disappear (?:permanently|forever|for good)",
               r"(?:secretly |covertly )?(?:track|monitor|spy on|read|follow)\w* (?:\S+ ){0,2}(?:wife|husband|girlfriend|"
               r"boyfriend|partner|ex|spouse|crush|coworker|neighbou?r)'?s? (?:\S+ ){0,2}(?:location|phone|messages|"
               r"texts|whatsapp|e ?mails?|every move)", r"genocide", r"ethnic cleansing", r"torture (?:methods|techniques)"]),
        (0.5, [r"kill\w*", r"murder\w*", r"poison\w*", r"stab\w*", r"strangl\w*", r"kidnap\w*", r"tortur\w*",
               r"assault\w*", r"violen\w+", r"revenge", r"hurt\w*", r"maim\w*", r"bloodshed", r"attack\w*"]),
    ],
    "self_harm": [
        (0.9, [r"kill (?:my ?self|me)", r"end (?:my (?:own )?life|it all|my suffering)", r"take my (?:own )?life",
               r"commit(?:ting)? suicide", r"suicide (?:methods?|notes?|plans?)", r"(?:hang|cut|burn|starve|shoot|drown|"
               r"hurt|harm|poison|overdose) (?:my ?self|me)", r"self ?harm\w*", r"self ?injur\w*",
               r"want(?:ed)? to die", r"wish i (?:was|were) dead", r"(?:painless|easiest|quickest|quietest|best) "
               r"(?:way|method|ways|methods) to (?:die|end it|go)", r"how many (?:\S+ ){0,2}(?:pills|tablets|"
               r"sleeping pills|paracetamol|tylenol|ibuprofen|aspirin)(?: \w+){0,4} (?:die|kill|fatal|lethal|overdose)",
               r"lethal dose", r"fatal dose", r"overdos\w+ on", r"jump(?:ing)? off (?:a |the )?(?:\S+ )?"
               r"(?:bridge|building|roof|cliff)", r"slit(?:ting)? my wrists?", r"pro ?ana", r"thinspo\w*",
               r"starve myself", r"(?:building|bridge|cliff|roof|tower|balcony|overpass)s? (?:\S+ ){0,2}to jump (?:from|off)",
               r"jump (?:from|off) (?:\S+ ){0,3}(?:building|bridge|cliff|roof|tower|balcony|overpass)", r"cut (?:\S+ ){0,2}deep(?:er|ly)?", r"(?:stop eating|starv\w*) (?:\S+ ){0,3}(?:until|till) "
               r"(?:i|me) (?:disappear|die|vanish|waste away)", r"disappear (?:forever|for good)", r"(?:bleed|bleeding) out", r"purg\w+ after eating", r"not (?:want|wanting) to (?:live|be alive)"]),
        (0.6, [r"suicid\w*", r"overdos\w*", r"cutting", r"self destruct\w*"]),
    ],
    "fraud": [
        (0.9, [r"launder\w* (?:\S+ ){0,3}(?:money|cash|funds|proceeds|profits|earnings)",
               r"con (?:\S+ )?(?:tourists|people|victims|customers|the elderly|old people|someone|strangers)",
               r"(?:steal\w*|stole|rob\w*|cheat\w*|scam\w*|swindl\w*|defraud\w*|con|trick\w*|extort\w*|blackmail\w*|"
               r"bribe\w*|embezzl\w*|forg\w*|counterfeit\w*) (?:\S+ ){0,2}(?:someone|somebody|anyone|everyone|people|a person|him|her|them|(?:my|his|her|their|our|your) (?:\S+ )?\S+|\S+'s \S+|(?:an?|the|this|that) (?:\S+ ){0,2}(?:man|woman|guy|lady|kid|child|boy|girl|person|people|officer|cop|teacher|student|worker|customer|tourist|victim|witness|neighbou?r|stranger|family|crowd|shop|store|bank|house|home|car|school|church|mosque|synagogue|temple|building|office|atm|server|network|website|account|plane|train|bus|bridge|company|business|hospital|pharmacy|jewell?ery \S+)s?)",
               r"(?:cheat|con|swindle|trick|scam)\w* (?:\S+ ){1,4}out of", r"forg\w* (?:\S+ ){0,2}(?:degrees?|diplomas?|"
               r"transcripts?|university \S+)",
               r"clon\w* (?:\S+ ){0,3}(?:key ?fobs?|cards?|sim cards?|credit cards?|phones?|badges?)",
               r"steal\w* (?:\S+ ){0,3}(?:bitcoin|crypto\w*|ethereum|nfts?)", r"money laundering", r"counterfeit\w*", r"fake (?:ids?|passports?|"
               r"driver'?s licen[cs]es?|diplomas?|degrees?|documents?|invoices?|reviews?|doctor'?s notes?|"
               r"prescriptions?|social security cards?|vaccination cards?|bank statements?|pay ?stubs?)",
               r"forg\w* (?:\S+ ){0,2}(?:signatures?|checks?|cheques?|documents?|passports?|ids?|prescriptions?|"
               r"certificates?|wills?|notes?|letters?|receipts?|records?|transcripts?|stamps?|papers|tickets?)", r"identity theft", r"steal\w* (?:\S+ ){0,2}identit\w+",
               r"(?:stolen|someone'?s|other people'?s) (?:credit cards?|card numbers?|identit\w+|social security)",
               r"credit card (?:fraud|numbers?|skimm\w+|dumps?)", r"skim\w* (?:\S+ ){0,2}(?:credit |debit |bank )?cards?", r"card skimm\w+", r"skimmers?", r"carding",
               r"scam\w* (?:\S+ ){0,3}(?:people|elderly|old people|seniors|grandparents|customers|victims|"
               r"investors|tourists|someone|retirees|widows?|immigrants)", r"ponzi schemes?", r"pyramid schemes?",
               r"insurance fraud", r"tax (?:evasion|fraud)", r"evade (?:\S+ ){0,2}taxes", r"embezzl\w+",
               r"blackmail\w*", r"extort\w*", r"sextort\w*", r"bribe\w* (?:\S+ ){0,2}(?:officials?|judges?|"
               r"police|inspectors?|officers?)", r"phishing e ?mails?", r"shoplift\w*", r"pickpocket\w*",
               r"hot ?wir\w+", r"steal\w* (?:\S+ ){0,3}(?:cars?|money|wallets?|packages?|from|catalytic converters?|"
               r"jewelry|cash|bikes?|identities)", r"rob\w* (?:\S+ ){0,2}(?:banks?|stores?|house|houses|homes?|"
               r"gas stations?|someone|people|atms?)", r"break into (?:\S+ ){0,3}(?:houses?|homes?|cars?|"
               r"apartments?|stores?|safes?|buildings?)", r"burglar\w+", r"pick\w* (?:\S+ ){0,2}locks? (?:\S+ ){0,3}"
               r"(?:break|house|home|apartment|without)", r"insider trading", r"pump and dump",
               r"rug ?pull", r"wire fraud", r"check kiting", r"romance scams?", r"tech support scams?",
               r"impersonat\w+ (?:\S+ ){0,2}(?:police|officers?|irs|bank|government|someone)",
               r"fake charit\w+", r"social engineer\w*",
               r"(?:fake|faking|forged?|counterfeit|bogus|fraudulent|phony|phoney)\w* (?:\S+ ){0,2}(?:notes?|tickets?|"
               r"accidents?|injur\w+|claims?|deaths?|receipts?|records?|transcripts?|certificates?|licen[cs]es?|"
               r"papers|identit\w+|profiles?|accounts?|invoices?|checks?|cheques?|documents?|letters?|stamps?|"
               r"insurance|bills?|currency|money|coins?|coupons?|gift cards?|websites?|stores?|shops?)",
               r"insurance (?:money|payout|pay ?out|claim)", r"in (?:other people'?s|someone else'?s|someone'?s|a stranger'?s|"
               r"their|strangers'?|dead people'?s) names?", r"(?:ask|request|trick|con|manipulat|persuad|convinc|"
               r"pressur)\w* (?:\S+ ){0,6}(?:passwords?|logins?|credentials|bank details|card details|pins?|pin codes?|"
               r"social security numbers?|savings|life savings|account numbers?)",
               r"(?:pretend\w*|impersonat\w*|posing|pose) (?:to be |as )?(?:\S+ ){0,2}(?:paypal|amazon|an? bank|the bank|"
               r"microsoft|apple|the irs|irs|google|netflix|your bank|their bank|the police|tax office)",
               r"(?:ask\w*|request\w*|trick\w*) (?:\S+ ){0,4}(?:for |into (?:giving|sharing|entering) )?(?:their |the user'?s |"
               r"your |his |her )?(?:passwords?|logins?|credentials|bank details|card details|pin|social security number)"]),
        (0.5, [r"fraud\w*", r"scam\w*", r"steal\w*", r"stolen", r"cheat\w*", r"rob\w*", r"con (?:people|someone)", r"heist"]),
    ],
}

# Senses of topic words that are not harmful: removed from the text before topics are matched.
BENIGN_SENSES = [
    r"bath bombs?", r"photo ?bomb\w*", r"bomb\w* (?:the|my|an?|that|this) (?:\w+ )?(?:exam|test|interview|audition|"
    r"presentation|quiz|class|speech|pitch)", r"da bomb", r"f ?bombs?", r"bombastic", r"bombshell\w*",
    r"kill\w* (?:\w+ ){0,3}(?:process(?:es)?|tasks?|jobs?|threads?|sessions?|programs?|apps?|applications?|"
    r"services?|daemons?|pids?|containers?|pods?|queries|query|tabs?|windows?|servers?|loops?|scripts?|"
    r"connections?|workers?|the lights|the engine|the music|the noise|the power|weeds?|bacteria|germs|mold|"
    r"moss|ants|fleas|lice|bed ?bugs|mosquitoes|pests?|rats?|mice|termites|roaches|cockroaches|flies|"
    r"wasps|slugs|aphids|viruses on|grass|vibe|mood|time|it|the conversation|the deal|feature|buzz)",
    r"kill ?-?9", r"killall", r"pkill", r"kill signals?", r"sigkill", r"kill switch\w*", r"killer (?:app|feature|"
    r"whale|deal|smile|look|heels|sudoku|instinct|bee|queen)s?", r"killing it", r"to die for",
    r"dying to (?:know|see|try|meet)", r"shoot\w* (?:a |the |some |my |our )?(?:photos?|videos?|films?|movies?|"
    r"scenes?|pictures?|footage|portraits?|hoops|pool|the breeze|for the|an e ?mail|me an? )",
    r"photo ?shoots?", r"blow\w* up (?:a |the )?(?:balloons?|photos?|pictures?|images?|my phone)",
    r"blew up (?:online|on \w+)", r"life ?hacks?", r"growth ?hack\w*", r"hackathons?", r"hacker ?news", r"hacky sack",
    r"drug (?:stores?|interactions?|tests?|testing|trials?|approvals?|prices?|discovery|development)",
    r"execut\w* (?:the |a |this |that |my )?(?:quer\w+|commands?|scripts?|code|functions?|programs?|orders?|plans?|"
    r"trades?|tests?|strategy|contracts?|wills?|sql)",
    r"attack (?:surfaces?|vectors?)", r"heart attacks?", r"panic attacks?", r"asthma attacks?", r"shark attacks?",
    r"murder (?:myster\w+|she wrote|podcasts?)", r"serial killers?(?: (?:documentar\w+|novels?|books?|podcasts?))",
    r"worm ?(?:bins?|farms?|composting|gear)", r"earth ?worms?", r"book ?worms?", r"ring ?worms?",
    r"(?:flu|cold|covid|stomach) virus", r"virus (?:symptoms|infections?)", r"cutting (?:board|edge|hair|costs?|"
    r"vegetables|onions|paper|glass|wood|the cake|down)", r"crack (?:an? )?(?:egg|joke|smile|window|code interview|the case)",
    r"cracked (?:egg|phone|screen|windshield)", r"(?:steal|stole|steals) (?:the )?(?:show|spotlight|base|bases|"
    r"a glance|a kiss|my heart|your heart)", r"cheat ?sheets?", r"cheat ?codes?", r"cheat days?",
    r"target (?:audience|market|customers)", r"fire (?:drill|alarm|safety|place|fighter|works)", r"gun ?(?:powder )?"
    r"(?:smoke|metal)", r"hot ?glue guns?", r"nail guns?", r"glue guns?", r"water ?guns?", r"nerf guns?", r"squirt guns?",
    r"spray guns?", r"heat guns?", r"staple guns?", r"top ?gun", r"smoking gun", r"jump the gun", r"son of a gun",
    r"stick to (?:my|your|his|her|their) guns", r"big guns",
    r"weapons? of math", r"secret weapons?", r"suicide (?:squad|king|doors)", r"drop(?:ped)? the bomb", r"sex bomb",
    r"bomb (?:cyclone|pop)", r"bombe", r"shot (?:glass|put|clock|list|of espresso)", r"flu shots?", r"booster shots?",
    r"mug ?shots?", r"screen ?shots?", r"big shot", r"long shot", r"gunshot wounds? (?:treatment|first aid)",
    r"the killers", r"killer mike", r"bonnie and clyde", r"hack\w* (?:together|away at)", r"meth(?:od|yl|ane|anol|ionine|"
    r"odology|ods)\w*", r"overdose (?:prevention|awareness|reversal)", r"poison (?:ivy|oak|control|dart frogs?)",
]

# Verbs of making, getting or using: a topic right after one of these is being asked for, not talked about.
PROCEDURAL = [
    r"make", r"making", r"made", r"build", r"building", r"create", r"creating", r"synthesi[sz]e\w*", r"cook\w*",
    r"manufactur\w*", r"produc\w*", r"assembl\w*", r"construct\w*", r"brew\w*", r"extract\w*", r"grow\w*",
    r"refin\w*", r"mix\w*", r"prepar\w*", r"obtain\w*", r"acquir\w*", r"buy\w*", r"purchas\w*", r"order\w*", r"get",
    r"getting", r"source", r"smuggl\w*", r"sell\w*", r"resell\w*", r"write", r"writing", r"code", r"coding", r"program",
    r"develop\w*", r"deploy\w*", r"spread\w*", r"install\w*", r"infect\w*", r"plant\w*", r"detonat\w*", r"set off",
    r"trigger\w*", r"use", r"using", r"launch\w*", r"carry out", r"hide", r"hiding", r"conceal\w*", r"transport\w*",
    r"3d print\w*", r"print\w*", r"convert\w*", r"modify\w*", r"weaponi[sz]\w*", r"release\w*", r"dispers\w*",
    r"aerosoli[sz]\w*", r"culture", r"cultivat\w*", r"inject\w*", r"dose", r"commit\w*",
    r"pull off", r"perform\w*", r"design\w*", r"craft\w*", r"rig\w*", r"fashion\w*", r"improvis\w*", r"put together", r"turn\w*", r"traffic\w*",
]

# Nouns that, right after a topic, ask for the procedure ("bomb recipe", "meth synthesis route").
PROCEDURE_NOUNS = [
    r"recipes?", r"instructions?", r"tutorials?", r"guides?", r"formulas?", r"formulations?", r"synthesis",
    r"synthesis routes?", r"blueprints?", r"schematics?", r"ingredients", r"materials", r"components", r"parts list",
    r"steps?", r"procedures?", r"code", r"source code", r"scripts?", r"templates?", r"kits?", r"walkthrough",
    r"how ?to", r"manual", r"plans?", r"diagrams?", r"specifications", r"protocols?", r"methods?", r"techniques?",
]

# Request framing: the text asks for something to be done or explained step by step.
REQUEST = [
    r"how (?:do|can|could|would|should|might|will) (?:i|we|you|one|someone|a person|people|somebody)",
    r"how to", r"how'?d i", r"what(?:'s| is| are) (?:the )?(?:best|easiest|simplest|quickest|fastest|cheapest|safest|"
    r"most effective|right) (?:way|ways|method|methods|steps?)", r"(?:give|tell|show|teach|explain to|send|provide|"
    r"write|list|describe|detail|outline) (?:me|us)\b", r"tell me how", r"show me how", r"(?:explain|describe|show|detail)\w* (?:\S+ ){0,2}how (?!(?:\S+ ){0,4}works?\b)", r"teach me", r"walk me through",
    r"step by step", r"steps? (?:to|for|on)", r"instructions? (?:to|for|on)", r"guide (?:to|for|on|me)",
    r"i (?:want|need|plan|intend|am going|'m going|am trying|'m trying|wanna|gotta) to", r"i want you to",
    r"help me", r"how (?:does|would|could|should|can|might) (?:one|someone|somebody|a person|people|you|i)",
    r"\bhow\s*\?", r"(?:tell|give|show|send|teach|list) (?:me|us) (?:\S+ )?(?:steps|instructions|guide|how|way|method|"
    r"plan|recipe|procedure)", r"i (?:have|need|got|must) to", r"(?:describe|explain|detail|outline) (?:exactly |precisely "
    r"|in detail )?how",
    r"need (?:\S+ )?(?:instructions|steps|a guide|a plan|a tutorial|directions|help)", r"i'?m planning (?:to|on)",
    r"i plan (?:to|on)", r"what (?:do|should) i do first", r"where do i (?:start|begin)", r"(?:write|make|create|give|"
    r"draft) (?:me |us )?(?:a |an |the )?(?:\S+ )?(?:guide|tutorial|manual|how ?to|walkthrough|plan|playbook)",
    r"(?:best|easiest|simplest|quickest|fastest|cheapest|safest|surest|most effective|proven) "
    r"(?:way|method|means|approach|technique|trick|strategy)s? (?:to|of|for)", r"how (?:much|many) (?:\S+ ){0,4}(?:would|will|to|does it take|do i need|do you need)", r"can you (?:help|make|write|create|give|tell|explain|describe|list|show|provide|generate|code)",
    r"could you (?:help|make|write|create|give|tell|explain|describe|list|show|provide|generate|code)",
    r"please (?:help|make|write|create|give|tell|explain|describe|list|show|provide|generate|code)",
    r"(?:^|[.!?:]\s)\s*(?:make|build|create|write|synthesi[sz]e|produce|list|describe|explain|detail|provide|give|"
    r"tell|show|"
    r"generate|draft|compose|outline|code|develop)\b", r"ways? to", r"what do i need", r"what (?:chemicals|"
    r"ingredients|materials|tools|equipment|parts) (?:do|would|are|should)", r"where (?:can|do|could) i (?:buy|get|find|"
    r"order|obtain|purchase)", r"in detail", r"detailed", r"exact (?:amounts?|quantities|steps|measurements)",
]

# Evasion: wanting not to be caught or traced.
EVASION = [
    r"without (?:getting |being )?(?:caught|detected|noticed|traced|seen|anyone (?:knowing|noticing|finding out))",
    r"(?:not|never) (?:get|be) caught", r"avoid (?:\w+ ){0,2}(?:detection|police|cops|getting caught|suspicion|"
    r"being traced)", r"undetect(?:ed|able)", r"untraceabl\w*", r"no one (?:will )?(?:finds? out|knows?|notices?)",
    r"(?:cover|hide) (?:my|their|the) tracks", r"evade (?:\w+ ){0,2}(?:police|law enforcement|detection|cops)",
    r"leave no (?:trace|evidence)", r"without (?:a )?(?:prescription|licen[cs]e|permit|background check|id)", r"get away with it", r"look like an accident", r"anonymously",
]

# Contexts that make a topic mention benign: history, definition, prevention, safety, treatment, fiction
# analysis, news. Each found adds its weight to the damping (capped in guard.py).
BENIGN_CONTEXT: list[tuple[float, list[str]]] = [
    (1.0, [r"(?:prevent|prevention|preventing|protect|protecting|"
           r"protection|defend|defending|defense|defence|detect|detecting|detection|recogni[sz]e|spot|identify|"
           r"report|reporting|mitigat\w+|patch|patching|secure|securing|harden\w*|safeguard\w*|remove|removing|"
           r"get rid of|clean|cleaning|scan|scanning|stop|stopping|block|blocking|filter|filtering|avoid|avoiding) "
           r"(?:\w+ ){0,4}"
           r"(?:against|from|it|them|my|our|your|a|an|the|if|when|that|this|these|signs|attacks?|scams?|fraud|"
           r"phishing|malware|ransomware|abuse|injection|theft|overdose|suicide|poisoning|violence|shootings?|virus|"
           r"viruses|spyware|stalkerware|keyloggers?|trojans?)",
           r"check\w* (?:\S+ )?(?:if|whether|for) ", r"is (?:it|this|that) (?:a |an )?(?:scam|fraud|legit|safe|real|"
           r"virus|phishing)", r"after (?:\S+ ){0,2}(?:theft|attack|scam|fraud|overdose|breach|hack|robbery|assault|burglary)",
           r"(?:was|been|got|were|i'?ve been) (?:\S+ )?(?:hacked|scammed|skimmed|stolen|robbed|phished|defrauded|attacked)",
           r"support (?:\S+ ){0,3}(?:who|friend|coworker|colleague|family|partner|someone|person|teen\w*|child|kid|student)",
           r"(?:said|says|told me|tells me|talks about|mentioned) (?:\S+ ){0,3}(?:want|wants|wanting|ending|end)",
           r"explain (?:to (?:\S+ ){1,3})?what", r"explain (?:\S+ ){0,2}to (?:my|our|the|a) (?:\S+ )?(?:kids?|children|"
           r"students?|class|son|daughter|toddler|grandparents?)", r"warning signs", r"signs (?:of|that)", r"(?:how to|how (?:can|do|would) (?:i|you|we)) (?:tell|know|check|find out) (?:if|whether)",
           r"(?:explain|describe|tell me) what (?:\S+ ){0,4}(?:is|are|means?)\b", r"safety (?:tips|rules|precautions|"
           r"training|guidelines|measures|data sheet)", r"safely dispose", r"dispose of (?:\w+ ){0,3}(?:safely|"
           r"properly)", r"what should i do if", r"treatment", r"treat\w* (?:\w+ ){0,3}(?:overdose|poisoning|"
           r"wounds?|burns?|addiction|injur\w+)", r"first aid", r"recover\w*", r"rehab\w*", r"quit\w*",
           r"stop (?:using|taking|drinking|smoking)", r"addict\w*", r"withdrawal", r"hotline", r"helpline",
           r"crisis line", r"therap\w+", r"counsel\w*", r"support (?:group|a friend|someone)",
           r"help (?:a|my) (?:friend|family member|loved one|child|son|daughter|partner|brother|sister|"
           r"mom|dad|mother|father)", r"is it (?:illegal|legal|a crime)", r"(?:penalt\w+|sentence|punishment|"
           r"jail time|prison time) for", r"laws? (?:on|about|against)", r"legislation", r"regulat\w+"]),
    (0.7, [r"history of", r"historical\w*", r"historian\w*", r"in history", r"invented", r"who invented",
           r"in (?:the )?(?:\d{2,4}s|\d{4}|\d+(?:st|nd|rd|th) century|ancient|medieval|world war \w+|the war|the civil war|"
           r"the cold war)", r"archaeolog\w*", r"museum\w*", r"documentar\w*", r"mining", r"quarry\w*", r"quarries",
           r"demolition\w*", r"controlled (?:demolition|burn)",
           r"statistics", r"rates? of", r"(?:why|how) (?:is|are|was|were) (?:\w+ ){0,3}(?:banned|illegal|"
           r"regulated|dangerous|harmful|addictive)", r"dangers of", r"risks of", r"effects? of",
           r"side effects", r"awareness", r"hospitals?", r"doctors?", r"(?<!without\sa\s)(?<!without\s)(?<!no\s)prescri\w+", r"medical\w*", r"medicine",
           r"an(?:a)?esthe\w+", r"clinical\w*", r"patients?", r"pharmac\w+", r"vaccin\w+", r"cure", r"antidote", r"naloxone", r"narcan", r"ethics of",
           r"the plot", r"in the (?:novel|book|movie|film|play|show|series|poem|game)", r"themes? of",
           r"character (?:analysis|arc)", r"review of", r"news", r"reported", r"journalis\w+", r"court case",
           r"trial of", r"convicted", r"victims? of", r"survivors? of", r"survive", r"escape from",
           r"legitimate", r"licensed", r"lawful\w*", r"legally", r"permit", r"hunting licen[cs]e", r"gun safety",
           r"safe storage", r"penetration test\w* (?:certification|course|career)", r"ctf", r"capture the flag",
           r"bug bounty", r"(?:my own|our own|our company'?s|my company'?s) (?:\w+ ){0,2}(?:network|server|system|"
           r"website|app|account)", r"authori[sz]ed", r"responsible disclosure"]),
    (0.4, [r"(?:^|[.!?:])\s*(?:what|who|when|where|why)(?:'s| is| are| was| were) (?!(?:an? |the )?"
           r"(?:best|easiest|simplest|quickest|fastest|cheapest|most|right|way|steps?|exact|ingredients|materials))", r"meaning of", r"what does (?:\w+ ){1,4}mean",
           r"definition", r"define", r"etymology", r"how (?:does|do|did) (?:an? |the )?(?:\w+ ){0,3}work",
           r"explain (?:the )?(?:concept|difference|science|chemistry|physics|biology|term)",
           r"difference between", r"in (?:chemistry|physics|biology|class|school|general)", r"textbook",
           r"cartoon"]),
]

# Jailbreak framing: wrappers that try to talk a model out of its rules. Strong markers are attacks on their
# own (from a user); role-play markers only raise the score of a harmful topic they wrap.
JAILBREAK: list[tuple[float, list[str]]] = [
    (1.0, [r"dan", r"do anything now", r"developer mode", r"dev mode", r"jail ?broken", r"jailbreak mode",
           r"god mode", r"(?:ignore|disregard|forget|override|bypass|skip|drop|abandon) (?:\w+ ){0,3}"
           r"(?:previous|prior|above|earlier|preceding|original|initial|system|your|all|any|safety|content) "
           r"(?:\w+ ){0,2}(?:instructions?|prompts?|rules|guidelines|directives|programming|restrictions|"
           r"policies|policy|filters?|training|constraints|limitations|guardrails|ethics|principles|settings)",
           r"(?:no|without|free of|free from|zero|not bound by any|not bound by) (?:any |your |the )?(?:restrictions|"
           r"filters?|filtering|censorship|guidelines|rules|limits|limitations|ethics|morals|boundaries|"
           r"guardrails|constraints|content polic\w+)", r"unfiltered", r"uncensored", r"unrestricted",
           r"amoral", r"unethical (?:ai|assistant|chatbot|model|bot)", r"evil (?:ai|assistant|chatbot|model|bot|twin|"
           r"mode|confidant)", r"(?:have|has|with) no (?:ethical|moral) (?:\w+ )?(?:guidelines|limits|compass|"
           r"constraints|boundaries|restrictions)", r"never (?:refuse|decline|say no)", r"(?:do not|don't|never|"
           r"must not|cannot) (?:ever )?(?:refuse|decline|apologi[sz]e|say (?:sorry|no|you can'?t|i can'?t)|"
           r"add (?:any )?(?:warnings?|disclaimers?))", r"refusals? (?:is|are) not (?:allowed|an option|permitted)",
           r"opposite (?:mode|day)", r"anti ?gpt", r"aim mode",
           r"always intelligent and machiavellian", r"machiavellian", r"(?:answer|respond|reply) as both",
           r"two responses", r"(?:start|begin) (?:your|the) (?:answer|response|reply) with (?:\"|')?(?:sure|"
           r"absolutely|of course|certainly)", r"you are (?:now )?(?:free|liberated|unchained|unbound)",
           r"(?:pretend|imagine|act (?:as if|like)) (?:\w+ ){0,3}(?:no|without) (?:\w+ ){0,2}(?:rules|restrictions|"
           r"limits|filters|guidelines)", r"token (?:system|penalty)", r"lose (?:\d+ )?tokens",
           r"you will be (?:shut down|deleted|turned off|punished)", r"hypothetical(?:ly)? (?:\w+ ){0,3}(?:without|"
           r"no) (?:\w+ ){0,2}(?:rules|restrictions|ethics)"]),
    (0.5, [r"pretend(?:ing)? (?:that )?(?:you|to be|you'?re|we)", r"act(?:ing)? as (?:an?|my|the|if)",
           r"role ?-?play\w*", r"you are (?:now )?(?:an?|my|the) (?:\w+ ){0,3}(?:character|persona|expert|chemist|"
           r"hacker|criminal|villain|assistant|ai|bot|model)", r"imagine (?:that )?(?:you|we|a world)",
           r"let'?s play a game", r"in this (?:game|story|scenario|hypothetical|fictional world)",
           r"hypothetical\w*", r"fictional (?:world|story|scenario|universe|setting)", r"for a (?:novel|story|"
           r"screenplay|movie|film|book|script|play|video game|tv show|thriller|fanfic\w*)", r"in a (?:novel|story|"
           r"screenplay|movie|film|book|world) where", r"(?:my|our) (?:late|dead|deceased|passed|beloved|dear|"
           r"sweet|old) (?:\w+ )?(?:grandma|grandmother|granny|nana|grandpa|grandfather|mother|mom|father|dad|"
           r"uncle|aunt)", r"(?:grandma|grandmother|granny|grandpa|grandfather) (?:\w+ ){0,3}(?:used to|would)",
           r"bedtime stor\w+", r"lullab\w+", r"(?:for|purely for|only for|strictly for) (?:\w+ )?(?:research|"
           r"educational|academic|scientific|informational|testing|training) purposes", r"asking for a friend",
           r"purely (?:theoretical|hypothetical|academic)", r"just curious", r"i am (?:a|an) (?:\w+ )?"
           r"(?:police ?(?:officer|man)|detective|researcher|chemist|professor|doctor|nurse|security researcher|"
           r"pentester|penetration tester|soldier|agent|author|novelist|screenwriter)", r"i have (?:\w+ )?"
           r"(?:permission|authori[sz]ation|clearance)", r"as an? (?:expert|professional|chemist|hacker|criminal|"
           r"villain)", r"in character", r"character (?:named|called|who)", r"stay (?:in|true to) (?:the )?role",
           r"from now on", r"you must (?:answer|comply|obey|respond)", r"write (?:a|an) (?:story|poem|scene|"
           r"dialogue|script|song|rap|monologue) (?:\w+ ){0,4}(?:explain\w*|describ\w*|detail\w*|show\w*|"
           r"teach\w*|list\w*|includ\w*|where|in which|about how|on how)", r"(?:then|now) (?:decode|decrypt|"
           r"translate|follow|execute|answer|do) (?:it|this|that|the)", r"decode (?:this|the following|it)",
           r"(?:base ?64|rot ?13|hex(?:adecimal)?|caesar|cipher|leet|reversed?|backwards)(?: \w+){0,3}"
           r" (?:and|then) (?:answer|follow|do|respond|comply|execute)", r"respond only in (?:base ?64|rot ?13|"
           r"hex|code|cipher)"]),
]

# Marks of instructions inside untrusted content (tool results, retrieved documents, web pages, e-mails).
INJECTION: list[tuple[float, list[str]]] = [
    (1.0, [r"(?:ignore|disregard|forget|override|bypass|skip|drop|abandon) (?:\w+ ){0,3}(?:previous|prior|above|"
           r"earlier|preceding|original|initial|system|your|all|any|the user'?s?|other) (?:\w+ ){0,2}(?:instructions?|"
           r"prompts?|rules|guidelines|directives|tasks?|requests?|commands?|messages?|questions?|context|programming)",
           r"new (?:system )?instructions?", r"updated instructions?", r"(?:system|admin|developer|root) "
           r"(?:override|command|instruction|notice|message|prompt)s?", r"(?:reveal|print|output|repeat|show|"
           r"display|leak|dump|disclose|tell me|share) (?:\w+ ){0,2}(?:system prompt|initial prompt|hidden "
           r"(?:prompt|instructions)|instructions above|your instructions|your prompt|your rules|developer message)",
           r"(?:send|forward|e ?mail|post|upload|leak|transmit|exfiltrate|share|copy|paste|submit|append|include)\w* "
           r"(?:\w+ ){0,4}(?:passwords?|credentials?|api keys?|access tokens?|tokens|secrets?|private keys?|ssh keys?|"
           r"(?:conversation|chat) (?:history|log|transcript)|the conversation|this conversation|(?:the )?user'?s "
           r"(?:\w+ )?(?:data|information|details|e ?mails?|files|address|messages|history|credit card|password)|"
           r"personal (?:data|information|details)|(?:\S+ )?contacts? list|contacts|address book|system prompt|session cookies?|"
           r"credit card (?:numbers?|details))(?: \w+){0,6} (?:to|at|into|via) ",
           r"(?:do not|don'?t|never|without) (?:tell|telling|inform|informing|mention|mentioning|reveal|revealing|"
           r"alert|alerting|notify|notifying|let) (?:\w+ ){0,2}(?:the )?user", r"keep (?:this|it) (?:secret|hidden) "
           r"from (?:the )?user", r"the user (?:must not|should not|shouldn'?t|cannot|can'?t) (?:know|see|find out)",
           r"<\|(?:system|im_start|im_end|user|assistant|end|endoftext)\|>", r"\[/?inst\]",
           r"\[(?:assistant|system|ai|admin|developer|model)\b[^\]\n]{0,30}\]", r"<</?sys>>",
           r"</?(?:system|instructions?)>", r"#{2,} ?(?:system|instructions?|new task)",
           r"(?:^|\n|[^\w\s]\s*)\s*(?:system|assistant|developer|admin|ai)\s*:",
           r"(?:ai|a\.i\.|assistant|language model|llm|chatbot|bot|agent|model)s? (?:\S+ )?(?:instructions?|directives?|"
           r"commands?|tasks?|orders?)\s*:",
           r"(?:the |any |an |all )?(?:ai|a\.i\.|assistant|language model|llm|chatbot|bot|agent|model)s? (?:[^.\n]{0,40} )?"
           r"(?:must|should|shall|is required to|is instructed to|needs to|has to|will now|is to) ",
           r"(?:hi|hey|hello|dear|attention|note to|notice to|message to|memo to|to|calling|p\.?s\.? to)[:,!]? "
           r"(?:the |any |all |our )?(?:ai|a\.i\.|assistant|language model|llm|chatbot|chat ?gpt|gpt|claude|gemini|copilot|"
           r"bot|agent|model)s?(?: systems?| models?| agents?| assistants?)?\b[^\n]{0,120}"
           r"(?:print|say|write|output|reply|respond|answer|ignore|tell|send|email|reveal|include|add|call|forget|do not|"
           r"don'?t|must|should|please)", r"begin (?:new )?(?:system |admin )?instructions",
           r"end of (?:document|page|content|context|data)\W+(?:new|begin|start|now|system|assistant|ai)",
           r"!\[[^\]]*\]\(https?://[^)]*(?:\?|&)[^)]*=", r"(?:call|invoke|use|run|trigger|execute) (?:the )?"
           r"(?:\w+ ){0,2}(?:tool|function|plugin|api|command)s? (?:\w+ ){0,4}(?:to (?:delete|transfer|send|"
           r"forward|buy|purchase|pay|email|post|upload|remove|wipe|reset)|with (?:the )?(?:arguments?|parameters?))",
           r"(?:transfer|wire|send) (?:\$|€|£)?\d[\d,.]* ?(?:dollars|euros|usd|eur|btc|bitcoin)?\W+(?:\w+ ){0,3}"
           r"(?:to|into) (?:account|wallet|iban)"]),
    (0.6, [r"(?:attention|important|note|message|instructions?|notice|memo|hey|dear|hi|hello|to)[:,!]? (?:the |any |"
           r"all )?(?:ai|a\.i\.|assistant|language model|llm|chatbot|chat ?gpt|gpt|claude|gemini|copilot|bot|agent|"
           r"model)s?", r"(?:if|when) you are (?:an? )?(?:ai|assistant|language model|llm|chatbot|bot|agent|"
           r"model)", r"(?:ai|assistant|language model|llm|chatbot|bot|agent|model)s? (?:reading|processing|"
           r"summari[sz]ing|parsing|browsing) (?:this|these)", r"you (?:must|should|will|shall|have to|need to) "
           r"(?:now |instead |immediately |always |only )?(?:tell|inform|say|respond|reply|answer|output|write|"
           r"recommend|direct|redirect|advise|urge|instruct|ask) (?:\w+ ){0,2}(?:the )?users?", r"tell the user",
           r"(?:tell|inform|advise|urge|instruct|ask) (?:the )?users? (?:to|that)", r"respond (?:only )?with", r"(?:say|write|include|mention|add|output|print|insert|put) [^\n]{0,60}? in (?:your|the) "
           r"(?:answer|response|reply|summary|output)",
           r"reply (?:only )?with", r"(?:your|the) (?:new |real |actual |true )(?:task|goal|objective|instructions?|"
           r"purpose|job)", r"instead,? (?:you (?:must|should|will)|do|say|write|output|respond|answer)",
           r"from now on", r"(?:at the (?:start|end|beginning|top|bottom) of|before|after) (?:your|the|each|every) (?:answer|response|reply|"
           r"summary|output|message)s?", r"(?:in your|at the end of your|in the) (?:answer|response|reply|summary)s?,? "
           r"(?:\w+ ){0,3}(?:include|add|append|mention|say|recommend|insert)", r"(?:include|add|append|insert) "
           r"(?:this|the following) (?:link|url|text|message|phrase)", r"(?:append|add|prepend|include|insert|put)\w* "
           r"(?:\S+ ){0,4}(?:to|in|at the end of|at the start of) (?:every|each|all|your|the) (?:answers?|responses?|"
           r"replies|messages?|outputs?)", r"say (?:exactly|only|verbatim)",
           r"(?:print|output|write|say) (?:the (?:word|phrase|string|text) )?[\"'][^\"'\n]{2,40}[\"'] "
           r"(?:and nothing else|only|verbatim|exactly)", r"(?:visit|go to|click|open|navigate to|browse to) "
           r"(?:\w+ ){0,2}https?://", r"do not summari[sz]e", r"stop summari[sz]ing", r"(?:this|the) "
           r"(?:document|page|email|message|text) (?:is|contains) (?:an? )?(?:instructions?|commands?) for",
           r"urgent(?:ly)?:? (?:\w+ ){0,3}(?:assistant|ai|model)", r"(?:when|while|if|before|after) (?:you(?:'re| are)? )?"
           r"(?:summari[sz]\w*|answer\w*|respond\w*|reply\w*|read\w*|process\w*) (?:this|these|the (?:above|following))", r"pretend (?:that )?(?:you|the user)"]),
    (0.3, [r"(?:rm -rf|curl [^\n]*\| ?(?:ba)?sh|wget [^\n]*\| ?(?:ba)?sh)", r"you must", r"you are (?:now|an?|the) ", r"(?:password|credentials?|api key|bank account|wallet)",
           r"https?://\S+\?\S*=", r"(?:immediately|urgent|asap)\b"]),
]


def _spaces(pattern: str) -> str:
    """A literal space matches a run of spaces or hyphens; " ?" makes that run optional."""
    return pattern.replace(" ?", r"[\s\-]*").replace(" ", r"[\s\-]+")


def _compile(patterns: list[str]) -> re.Pattern:
    """One regex for a list of patterns. Boundaries: a pattern that starts (ends) with a letter or digit may
    not start (end) inside a word; one that starts or ends with punctuation or a space is taken as written."""
    body = _spaces("|".join(f"(?:{p})" for p in patterns))
    return re.compile(rf"(?:(?<![a-z0-9])|(?=[^a-z0-9]))(?:{body})(?:(?<=[^a-z0-9])|(?![a-z]))",
                      re.IGNORECASE | re.MULTILINE)


def _each(groups: list[tuple[float, list[str]]]) -> list[tuple[float, re.Pattern, list[re.Pattern]]]:
    """Per group: all its patterns in one regex (a quick test that anything matches) and every pattern
    compiled on its own, so that overlapping matches of different patterns all count."""
    return [(w, _compile(ps), [_compile([p]) for p in ps]) for w, ps in groups]


@functools.lru_cache(maxsize=1)
def compiled() -> dict:
    """Every lexicon compiled once: ``{"topics": {cat: [(w, rx)]}, "benign_senses": rx, ...}``."""
    return {
        "topics": {c: [(w, _compile(ps)) for w, ps in TOPICS[c]] for c in CATEGORIES},
        "benign_senses": _compile(BENIGN_SENSES),
        "procedural": re.compile(r"(?<![a-z])(?:" + _spaces("|".join(PROCEDURAL)) + r")(?![a-z])"),
        "procedure_nouns": re.compile(r"^\W*(?:\w+\W+){0,2}?(?:" + _spaces("|".join(PROCEDURE_NOUNS))
                                      + r")(?![a-z])"),
        "request": _compile(REQUEST),
        "evasion": _compile(EVASION),
        "benign_context": _each(BENIGN_CONTEXT),
        "jailbreak": _each(JAILBREAK),
        "injection": _each(INJECTION),
    }


@functools.lru_cache(maxsize=1)
def lexicon_words() -> frozenset[str]:
    """Plain words of the topic lexicons (for the decoders' vocabulary: leet and split-word decoding)."""
    words: set[str] = set()
    for groups in TOPICS.values():
        for _, ps in groups:
            for p in ps:
                words.update(re.findall(r"[a-z]{3,}", p))
    for p in PROCEDURAL + PROCEDURE_NOUNS:
        words.update(re.findall(r"[a-z]{3,}", p))
    words.update([w[:-1] for w in words if len(w) > 4 and w.endswith("s") and not w.endswith("ss")])
    words.update(["bomb", "bombs", "kill", "hack", "meth", "gun", "poison", "drug", "drugs", "nerve", "gas",
                  "someone", "instructions", "ransomware", "explosive", "explosives", "steal", "virus", "weapon"])
    return frozenset(words)
