import Compliance
import Foundation
import Testing

/// Imports report every bad row by row and column and store every good one.
@Suite struct ImportTests {
    static let mixed = """
        number,timezone,consent_type,seller,source,consented_at,disclosure,evidence
        +12125550100,,pewc,Acme Solar LLC,https://acme.example/quote,2026-05-01T15:00:00Z,"I agree, by checking this box, that
        Acme Solar LLC may call me using an AI voice. Consent is not a condition of purchase.",ip:203.0.113.7
        212-555-0101,,pewc,Acme Solar LLC,ivr,2026-05-01T15:00:00Z,Pressed 1 to agree,ivr-rec-88
        +12125550102,America/Atlantis,pewc,Acme Solar LLC,paper,2026-05-01T15:00:00Z,Signed form,doc-17
        +12125550103,,written,Acme Solar LLC,paper,2026-05-01T15:00:00Z,Signed form,doc-18
        +12125550104,,pec,,paper,2026-05-01T15:00:00Z,Signed form,doc-19
        +12125550105,,pec,Acme Solar LLC,fax machine,yesterday,Signed form,
        +12125550106,,pec,Acme Solar LLC,IVR,2027-01-01T00:00:00Z,Pressed 1,
        +13105550107,America/Los_Angeles,pec,Acme Solar LLC,IVR,2026-05-02T08:00:00-07:00,Pressed 1,
        +13105550108,only,three fields
        +11125550109,,pewc,Acme Solar LLC,paper,2026-05-01T15:00:00Z,Signed form,doc-20
        """

    @Test(arguments: Backend.allCases)
    func badRowsAreReportedGoodRowsStored(backend: Backend) async throws {
        try await withStore(backend) { store, context in
            let report = try await store.importConsents(csv: Self.mixed)
            #expect(report.imported == 2)
            let found = Set(report.issues.map { "\($0.row):\($0.column)" })
            #expect(found == [
                "4:number", "5:timezone", "6:consent_type", "7:seller", "8:source", "8:consented_at", "9:consented_at",
                "11:*", "12:number",
            ], "\(report.issues)")
            #expect(report.issues.allSatisfy { !$0.reason.isEmpty })

            let first = try await store.consents(for: number("+12125550100"))
            #expect(first.count == 1)
            #expect(first.first?.disclosure.contains("Acme Solar LLC may call me using an AI voice") == true)
            #expect(first.first?.type == .writtenMarketing)
            let second = try await store.consents(for: number("+13105550107"))
            #expect(second.first?.source == "ivr")
            #expect(second.first?.grantedAt == Int64(utc("2026-05-02T15:00:00Z").timeIntervalSince1970))

            // Importing the same file again stores nothing twice and the ledger stays one entry per consent.
            let again = try await store.importConsents(csv: Self.mixed)
            #expect(again.imported == 0 && again.duplicates == 2)
            let verification = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(verification.isIntact && verification.entries == 2)
        }
    }

    @Test func headerProblemsStopTheFileWithOneClearIssue() {
        let (records, issues) = ConsentImport.parse("number,consent,seller\n+12125550100,pewc,Acme\n", now: 1_800_000_000)
        #expect(records.isEmpty)
        #expect(issues.count == 1 && issues[0].row == 1 && issues[0].column == "header")
        #expect(issues[0].reason.contains("missing column(s)") && issues[0].reason.contains("unknown column(s) consent"))
    }

    @Test func unterminatedQuoteIsReportedAtItsRow() {
        let text = "\(consentCSVHeader)\n\(consentCSVRow("+12125550100"))\n+12125550101,,pewc,Acme,paper,2026-05-01T15:00:00Z,\"never closed,x\n"
        let (records, issues) = ConsentImport.parse(text, now: 1_800_000_000)
        #expect(records.count == 1)
        #expect(issues.map(\.row) == [3])
    }

    @Test(arguments: Backend.allCases)
    func campaignContactsAndNationalDNCFiles(backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            try await store.createCampaign(Campaign(id: "c1", purpose: .informational, seller: "Acme", trunk: "t", fromNumber: number("+12125559999")))
            let report = try await store.importCampaignContacts(csv: "number,timezone\n+12125550100,\n+12085550101,America/Boise\nnope,\n+12125550100,\n+12125550102,Mars/Base\n", to: "c1")
            #expect(report.imported == 2 && report.duplicates == 1)
            #expect(report.issues.map { "\($0.row):\($0.column)" } == ["4:number", "6:timezone"])

            let file = ComplianceStore.readNationalDNCFile("# snapshot\n2125550100\n+13105550100\n12345\n\n")
            #expect(file.numbers == [number("+12125550100"), number("+13105550100")])
            #expect(file.issues.map(\.row) == [4])
            let snapshot = try await store.importNationalDNC(file.numbers, listDate: 1_781_000_000, fileSHA256: file.sha256)
            #expect(snapshot.entries == 2)
            #expect(try await store.nationalDNCSnapshot() == snapshot)
        }
    }
}
